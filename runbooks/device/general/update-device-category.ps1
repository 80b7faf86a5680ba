<#
  .SYNOPSIS
  Change the Intune device category of a device.

  .DESCRIPTION
  Looks up the Intune managed device that belongs to the selected Entra ID device
  and assigns it to another device category. Dynamic groups that filter on the
  category pick up the change at their next evaluation.

  .PARAMETER DeviceId
  Entra ID device ID (not the Intune ID) of the device.

  .PARAMETER CategoryName
  Display name of the target device category, exactly as configured in Intune.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [Parameter(Mandatory = $true)]
    # RealmJoin fills this in from the device the runbook was started on.
    [ValidateScript( { Use-RJInterface -Type Graph -Entity Device -DisplayName "Device" } )]
    [string] $DeviceId,
    [Parameter(Mandatory = $true)]
    [string] $CategoryName,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$managed = Invoke-RjRbRestMethodGraph -Resource "/deviceManagement/managedDevices" -OdFilter "azureADDeviceId eq '$DeviceId'" -OdSelect "id,deviceName"
if (-not $managed) {
    throw "No Intune managed device found for Entra ID device '$DeviceId'."
}

$category = Invoke-RjRbRestMethodGraph -Resource "/deviceManagement/deviceCategories" -OdFilter "displayName eq '$CategoryName'"
if (-not $category) {
    throw "Device category '$CategoryName' does not exist."
}

$ref = @{ "@odata.id" = "https://graph.microsoft.com/beta/deviceManagement/deviceCategories/$($category.id)" }
Invoke-RjRbRestMethodGraph -Resource "/deviceManagement/managedDevices/$($managed.id)/deviceCategory/`$ref" -Method Put -Body $ref -Beta | Out-Null

"## '$($managed.deviceName)' moved to device category '$CategoryName'."
