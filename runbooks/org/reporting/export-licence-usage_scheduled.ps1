<#
  .SYNOPSIS
  Export licence usage to a CSV file in Azure Storage.

  .DESCRIPTION
  Collects every subscribed SKU with its purchased and assigned units, plus the
  number of licensed users that have not signed in since the start date, and
  uploads the result as a dated CSV file to a blob container. Meant to run on a
  schedule, e.g. monthly, so that licence trends can be tracked over time.

  .PARAMETER Since
  Start of the reporting period. Licensed users without a sign-in after this date
  are counted as idle. Defaults to 30 days ago.

  .PARAMETER StorageAccountName
  Storage account that receives the report.

  .PARAMETER ResourceGroupName
  Resource group of the storage account.

  .PARAMETER ContainerName
  Blob container for the reports; created if it does not exist.

  .PARAMETER WorkerName
  Written into the report so you can tell which worker produced it.

  .NOTES
  Scheduled runbook: started by an Automation schedule, not from the portal, so it
  takes no CallerName.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }
#Requires -Modules @{ModuleName = "Az.Accounts"; ModuleVersion = "2.12.1" }
#Requires -Modules @{ModuleName = "Az.Storage"; RequiredVersion = "6.1.0" }

param(
    [datetime] $Since = (Get-Date).AddDays(-30),
    [Parameter(Mandatory = $true)]
    [string] $StorageAccountName,
    [Parameter(Mandatory = $true)]
    [string] $ResourceGroupName,
    [string] $ContainerName = "licence-reports",
    [string] $WorkerName = $env:COMPUTERNAME
)

Connect-RjRbGraph
Connect-RjRbAzAccount

$skus = Invoke-RjRbRestMethodGraph -Resource "/subscribedSkus"
$users = Invoke-RjRbRestMethodGraph -Resource "/users" -OdSelect "id,assignedLicenses,signInActivity" -FollowPaging |
    Where-Object { $_.assignedLicenses }

$rows = foreach ($sku in $skus) {
    $holders = @($users | Where-Object { $_.assignedLicenses.skuId -contains $sku.skuId })
    $idle = @($holders | Where-Object { -not $_.signInActivity.lastSuccessfulSignInDateTime -or [datetime] $_.signInActivity.lastSuccessfulSignInDateTime -lt $Since })
    [pscustomobject]@{
        Sku       = $sku.skuPartNumber
        Purchased = $sku.prepaidUnits.enabled
        Assigned  = $sku.consumedUnits
        Idle      = $idle.Count
        Since     = $Since.ToString("yyyy-MM-dd")
        Worker    = $WorkerName
    }
}

$file = Join-Path $env:TEMP ("licence-usage-{0:yyyy-MM-dd}.csv" -f (Get-Date))
$rows | Export-Csv -Path $file -NoTypeInformation -Encoding UTF8

$context = (Get-AzStorageAccount -ResourceGroupName $ResourceGroupName -Name $StorageAccountName).Context
if (-not (Get-AzStorageContainer -Name $ContainerName -Context $context -ErrorAction SilentlyContinue)) {
    New-AzStorageContainer -Name $ContainerName -Context $context -Permission Off | Out-Null
}
Set-AzStorageBlobContent -File $file -Container $ContainerName -Context $context -Force | Out-Null

"## Uploaded $(Split-Path $file -Leaf) with $(@($rows).Count) SKUs to '$StorageAccountName/$ContainerName'."
