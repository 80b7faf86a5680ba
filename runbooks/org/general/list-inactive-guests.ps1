<#
  .SYNOPSIS
  List guest accounts that have not signed in for a while.

  .DESCRIPTION
  Finds guest users whose last successful sign-in is older than the given number of
  days, optionally including guests that never signed in at all, and prints them as
  a table. If a recipient is given the list is also sent by e-mail.

  .PARAMETER InactiveDays
  A guest counts as inactive after this many days without a sign-in.

  .PARAMETER IncludeNeverSignedIn
  Also list guests that have never signed in (invitation never redeemed or used).

  .PARAMETER ReportRecipient
  Optional e-mail address that receives the list.

  .PARAMETER SenderMailbox
  Mailbox used to send the report; needed only when a recipient is given.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.

  .NOTES
  Reading signInActivity requires an Entra ID P1 licence in the tenant.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [int] $InactiveDays = 90,
    [bool] $IncludeNeverSignedIn = $true,
    [ValidateScript( { Use-RJInterface -DisplayName "Send report to" } )]
    [string] $ReportRecipient,
    [string] $SenderMailbox = "reports@contoso.com",
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$cutoff = (Get-Date).ToUniversalTime().AddDays(-$InactiveDays)
$guests = Invoke-RjRbRestMethodGraph -Resource "/users" -OdFilter "userType eq 'Guest'" -OdSelect "id,displayName,mail,createdDateTime,signInActivity" -FollowPaging

$inactive = foreach ($guest in $guests) {
    $last = $guest.signInActivity.lastSuccessfulSignInDateTime
    if ((-not $last -and $IncludeNeverSignedIn) -or ($last -and [datetime] $last -lt $cutoff)) {
        [pscustomobject]@{ DisplayName = $guest.displayName; Mail = $guest.mail; Created = $guest.createdDateTime; LastSignIn = $last }
    }
}

"## $(@($inactive).Count) of $(@($guests).Count) guests are inactive for more than $InactiveDays days."
$inactive | Sort-Object LastSignIn | Format-Table -AutoSize | Out-String

if ($ReportRecipient) {
    $body = @{
        message = @{
            subject      = "Inactive guest accounts ($InactiveDays days)"
            body         = @{ contentType = "Text"; content = ($inactive | Format-Table -AutoSize | Out-String) }
            toRecipients = @(@{ emailAddress = @{ address = $ReportRecipient } })
        }
    }
    Invoke-RjRbRestMethodGraph -Resource "/users/$SenderMailbox/sendMail" -Method Post -Body $body | Out-Null
    "## Report sent to $ReportRecipient."
}
