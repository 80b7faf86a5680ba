<#
  .SYNOPSIS
  Sign a user out of every active session.

  .DESCRIPTION
  Invalidates all refresh tokens and session cookies issued to the user, so that
  every browser and app has to authenticate again. Use it when a device was lost or
  an account is suspected to be compromised. The account itself stays enabled.

  .PARAMETER UserName
  User principal name of the user whose sessions are revoked.

  .PARAMETER Reason
  Free-text reason, written to the job log for the audit trail.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  It can take a few minutes until all Microsoft 365 services honour the revocation.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "User" } )]
    [string] $UserName,
    [string] $Reason = "Requested by helpdesk",
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose
Write-RjRbLog -Message "Reason: '$Reason'" -Verbose

Connect-RjRbGraph

$user = Invoke-RjRbRestMethodGraph -Resource "/users/$UserName" -OdSelect "id,displayName,accountEnabled"
if (-not $user) {
    throw "User '$UserName' was not found."
}

"## Revoking all sessions of '$($user.displayName)' ($UserName)"
$result = Invoke-RjRbRestMethodGraph -Resource "/users/$($user.id)/revokeSignInSessions" -Method Post

if ($result.value -eq $true) {
    "## All refresh tokens of '$UserName' are now invalid."
}
else {
    Write-RjRbLog -Message "Graph did not confirm the revocation: $($result | ConvertTo-Json -Compress)" -Verbose
    throw "Revoking the sessions of '$UserName' failed."
}
