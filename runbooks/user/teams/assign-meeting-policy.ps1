<#
  .SYNOPSIS
  Assign a Teams meeting policy to a user.

  .DESCRIPTION
  Grants a named Teams meeting policy (recording, transcription, lobby settings and
  so on) to one user. Choose "Global" to remove a direct assignment so that the
  organisation-wide default applies again.

  .PARAMETER UserName
  User principal name of the Teams user.

  .PARAMETER PolicyName
  Name of an existing meeting policy, or "Global" for the tenant default.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  Policy changes can take up to a few hours to reach all Teams clients.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }
#Requires -Modules MicrosoftTeams

param(
    [Parameter(Mandatory = $true)]
    [string] $UserName,
    [string] $PolicyName = "Global",
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-MicrosoftTeams -Identity | Out-Null

try {
    if ($PolicyName -eq "Global") {
        Grant-CsTeamsMeetingPolicy -Identity $UserName -PolicyName $null
        "## Removed the direct meeting policy of '$UserName'; the global policy applies."
    }
    else {
        $policy = Get-CsTeamsMeetingPolicy -Identity "Tag:$PolicyName" -ErrorAction SilentlyContinue
        if (-not $policy) {
            throw "Meeting policy '$PolicyName' does not exist."
        }
        Grant-CsTeamsMeetingPolicy -Identity $UserName -PolicyName $PolicyName
        "## Meeting policy '$PolicyName' assigned to '$UserName'."
    }
}
finally {
    Disconnect-MicrosoftTeams -ErrorAction SilentlyContinue | Out-Null
}
