<#
  .SYNOPSIS
  Rotate the Windows LAPS password of a device.

  .DESCRIPTION
  Triggers an immediate rotation of the local administrator password managed by
  Windows LAPS. The new password is stored in Entra ID once the device has
  processed the request; this runbook does not show it.

  .PARAMETER DeviceId
  Entra ID device ID of the Windows device.

  .PARAMETER Confirm
  Must be set to actually send the rotation request. Without it the runbook only
  shows which device would be affected.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  Only works for Windows devices with a LAPS policy assigned. See
  rotate-local-admin-password.md for prerequisites.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity Device -DisplayName "Device" } )]
    [string] $DeviceId,
    [bool] $Confirm = $false,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$managed = Invoke-RjRbRestMethodGraph -Resource "/deviceManagement/managedDevices" -OdFilter "azureADDeviceId eq '$DeviceId'" -OdSelect "id,deviceName,operatingSystem"
if (-not $managed) {
    throw "Device '$DeviceId' is not managed by Intune."
}
if ($managed.operatingSystem -ne "Windows") {
    throw "'$($managed.deviceName)' runs $($managed.operatingSystem); LAPS rotation needs Windows."
}

if (-not $Confirm) {
    "## Dry run: the LAPS password of '$($managed.deviceName)' would be rotated. Set Confirm to proceed."
    return
}

Invoke-RjRbRestMethodGraph -Resource "/deviceManagement/managedDevices/$($managed.id)/rotateLocalAdminPassword" -Method Post -Beta | Out-Null
Write-RjRbLog -Message "Rotation requested for $($managed.id)" -Verbose
"## Rotation of the local admin password of '$($managed.deviceName)' requested."
