<#
  .SYNOPSIS
  Add an additional e-mail address (alias) to a user's mailbox.

  .DESCRIPTION
  Adds an SMTP address to the proxy addresses of an Exchange Online mailbox. The
  domain of the new address must be an accepted domain of the tenant. Umlauts such
  as "ä" are not allowed in the local part; use "ae" instead.

  .PARAMETER UserName
  User principal name of the mailbox owner.

  .PARAMETER AliasAddress
  The address to add, e.g. "j.doe@contoso.com".

  .PARAMETER MakePrimary
  Make the new address the primary (reply) address of the mailbox.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  Requires the managed identity to hold the Exchange.ManageAsApp permission.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }, @{ModuleName = "ExchangeOnlineManagement"; ModuleVersion = "3.4.0" }

param(
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "Mailbox owner" } )]
    [string] $UserName,
    [Parameter(Mandatory = $true)]
    [string] $AliasAddress,
    [bool] $MakePrimary = $false,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

try {
    Connect-RjRbExchangeOnline

    $mailbox = Get-EXOMailbox -Identity $UserName -Properties EmailAddresses
    if ($mailbox.EmailAddresses -contains "smtp:$AliasAddress") {
        "## '$AliasAddress' is already assigned to '$UserName'."
        return
    }

    $prefix = if ($MakePrimary) { "SMTP" } else { "smtp" }
    Set-Mailbox -Identity $UserName -EmailAddresses @{ Add = "$($prefix):$AliasAddress" }
    "## Added '$AliasAddress' to '$UserName' (primary: $MakePrimary)."
}
finally {
    Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue | Out-Null
}
