<#
  .SYNOPSIS
  List who holds Owner or User Access Administrator on Azure subscriptions.

  .DESCRIPTION
  Walks through all subscriptions the Automation account's managed identity can
  read and lists the principals with a privileged role assignment at subscription
  scope. Use it for periodic access reviews of Azure.

  .PARAMETER RoleNames
  Azure role definitions to report on.

  .PARAMETER IncludeInherited
  Also report assignments inherited from management groups.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  The managed identity needs the Reader role on the subscriptions (or on a
  management group above them).
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }
#requires -modules @{ ModuleName='Az.Accounts' ; ModuleVersion='2.13.2' }
#Requires -Modules @{ModuleName = "Az.Resources"; ModuleVersion = "6.12.0" }

param(
    [string[]] $RoleNames = @("Owner", "User Access Administrator"),
    [switch] $IncludeInherited,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbAzAccount

$report = foreach ($subscription in Get-AzSubscription -WarningAction SilentlyContinue) {
    Set-AzContext -SubscriptionId $subscription.Id | Out-Null
    $scope = "/subscriptions/$($subscription.Id)"

    foreach ($assignment in Get-AzRoleAssignment -Scope $scope) {
        if ($RoleNames -notcontains $assignment.RoleDefinitionName) { continue }
        if (-not $IncludeInherited -and $assignment.Scope -ne $scope) { continue }

        [pscustomobject]@{
            Subscription = $subscription.Name
            Role         = $assignment.RoleDefinitionName
            Principal    = $assignment.DisplayName
            Type         = $assignment.ObjectType
            Scope        = $assignment.Scope
        }
    }
}

"## $(@($report).Count) privileged assignment(s) found."
$report | Sort-Object -Property @("Subscription", "Role") | Format-Table -AutoSize | Out-String
