<#
  .SYNOPSIS
  Give another user access to a user's calendar.

  .DESCRIPTION
  Adds or updates a folder permission on the calendar of the selected mailbox so
  that a colleague (for example an assistant) can view or edit appointments.

  .PARAMETER UserName
  User principal name of the calendar owner.

  .PARAMETER Delegate
  The user who receives access to the calendar.

  .PARAMETER AccessRight
  Permission level to grant. "Reviewer" can read, "Editor" can also create and
  change items, "LimitedDetails" sees subject and location only.

  .PARAMETER CalendarFolderName
  Name of the calendar folder. Mailboxes with a non-English default language may
  use a localized name, e.g. "Kalender".

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.3" }
#Requires -Modules @{ModuleName = "ExchangeOnlineManagement"; ModuleVersion = "3.2.0" }

param(
    [Parameter(Mandatory = $true)]
    [string] $UserName,
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "Delegate" } )]
    [string] $Delegate,
    [Parameter(Mandatory=$false)]
    [ValidateSet("Reviewer", "Editor", "LimitedDetails")]
    [string] $AccessRight = 'Reviewer',
    [string] $CalendarFolderName = "Calendar",
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

try {
    Connect-RjRbExchangeOnline

    $folder = "$($UserName):\$CalendarFolderName"
    $existing = Get-MailboxFolderPermission -Identity $folder -User $Delegate -ErrorAction SilentlyContinue

    if ($existing) {
        Set-MailboxFolderPermission -Identity $folder -User $Delegate -AccessRights $AccessRight | Out-Null
        "## Updated access of '$Delegate' on '$folder' to $AccessRight."
    }
    else {
        Add-MailboxFolderPermission -Identity $folder -User $Delegate -AccessRights $AccessRight | Out-Null
        "## Granted $AccessRight access on '$folder' to '$Delegate'."
    }
}
finally {
    Disconnect-ExchangeOnline -Confirm:$false -ErrorAction SilentlyContinue | Out-Null
}
