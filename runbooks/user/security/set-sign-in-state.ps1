<#
  .SYNOPSIS
  Allow or block sign-in for a user account.

  .DESCRIPTION
  Sets the accountEnabled flag of a user in Microsoft Entra ID. Blocking sign-in
  does not delete anything: mailbox, files and licences stay in place, so the
  account can be re-enabled later without data loss.

  .PARAMETER UserName
  User principal name of the account to change.

  .PARAMETER Action
  "Enable" allows sign-in again, "Disable" blocks it.

  .PARAMETER AlsoRevokeSessions
  When blocking, also invalidate the user's existing sessions so that the block
  takes effect immediately instead of when the current tokens expire.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .INPUTS
  RunbookCustomization: {
      "Parameters": {
          "UserName": { "Hide": true },   // the portal passes the selected user
          "CallerName": { "Hide": true },  // set by the portal
          "Action": {
              "DisplayName": "Enable or disable sign-in",
              "SelectSimple": {
                  "Allow sign-in": "Enable",
                  "Block sign-in": "Disable",
              },
          },
          "AlsoRevokeSessions": { "DisplayName": "Sign out everywhere when blocking", },
      }
  }
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.3" }

param(
    [Parameter(Mandatory = $true)]
    [string] $UserName,
    [ValidateSet("Enable", "Disable")]
    [string] $Action = "Disable",
    [bool] $AlsoRevokeSessions = $true,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$user = Invoke-RjRbRestMethodGraph -Resource "/users/$UserName" -OdSelect "id,displayName,accountEnabled"
$enable = ($Action -eq "Enable")

if ($user.accountEnabled -eq $enable) {
    "## '$($user.displayName)' is already in the requested state ($Action). Nothing to do."
    return
}

Invoke-RjRbRestMethodGraph -Resource "/users/$($user.id)" -Method Patch -Body @{ accountEnabled = $enable } | Out-Null
"## Sign-in for '$UserName' set to: $Action"

if (-not $enable -and $AlsoRevokeSessions) {
    Invoke-RjRbRestMethodGraph -Resource "/users/$($user.id)/revokeSignInSessions" -Method Post | Out-Null
    "## Existing sessions of '$UserName' revoked."
}
