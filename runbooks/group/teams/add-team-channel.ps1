<#
  .SYNOPSIS
  Create a new channel in a team.

  .DESCRIPTION
  Adds a standard, private or shared channel to the team that belongs to the
  selected Microsoft 365 group. For private and shared channels the caller-supplied
  owner becomes the first channel owner.

  .PARAMETER GroupId
  Object ID of the Microsoft 365 group behind the team.

  .PARAMETER ChannelName
  Display name of the new channel (max. 50 characters).

  .PARAMETER ChannelType
  Standard, Private or Shared.

  .PARAMETER ChannelOwner
  User principal name of the first owner. Required for private and shared channels.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }
#Requires -Modules @{ModuleName = "MicrosoftTeams"; ModuleVersion = "5.8.0" }

param(
    [Parameter(Mandatory = $true)]
    [string] $GroupId,
    [Parameter(Mandatory = $true)]
    [ValidateLength(1, 50)]
    [string] $ChannelName,
    [ValidateSet("Standard", "Private", "Shared")]
    [string] $ChannelType = 'Standard',
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "Channel owner" } )]
    [string] $ChannelOwner,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

if ($ChannelType -ne "Standard" -and -not $ChannelOwner) {
    throw "A $ChannelType channel needs a channel owner."
}

Connect-MicrosoftTeams -Identity | Out-Null

try {
    if (Get-TeamChannel -GroupId $GroupId | Where-Object { $_.DisplayName -eq $ChannelName }) {
        "## A channel named '$ChannelName' already exists."
        return
    }

    $arguments = @{ GroupId = $GroupId; DisplayName = $ChannelName; MembershipType = $ChannelType }
    if ($ChannelType -ne "Standard") {
        $arguments.Owner = $ChannelOwner
    }
    New-TeamChannel @arguments | Out-Null
    "## $ChannelType channel '$ChannelName' created."
}
finally {
    Disconnect-MicrosoftTeams -ErrorAction SilentlyContinue | Out-Null
}
