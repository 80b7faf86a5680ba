<#
  .SYNOPSIS
  Set the usage location of a user.

  .DESCRIPTION
  Licences can only be assigned to users that have a usage location. This runbook
  sets it to a two-letter ISO 3166 country code – for example "DE" or "AT" – and
  reports the previous value.

  .PARAMETER UserName
  User principal name of the user to update.

  .PARAMETER CountryCode
  Two-letter ISO 3166-1 alpha-2 country code, e.g. DE, AT, CH or US.

  .PARAMETER Overwrite
  Replace an existing usage location. Without this switch a user that already has
  a usage location is left unchanged.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [Parameter(Mandatory)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "User" } )]
    [string] $UserName,
    [Parameter(Mandatory)]
    [ValidatePattern('^[A-Za-z]{2}$')]
    [string] $CountryCode,
    [switch] $Overwrite,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$CountryCode = $CountryCode.ToUpperInvariant()
$user = Invoke-RjRbRestMethodGraph -Resource "/users/$UserName" -OdSelect "id,displayName,usageLocation"

if ($user.usageLocation -and -not $Overwrite) {
    "## '$($user.displayName)' already has usage location '$($user.usageLocation)'. Use -Overwrite to change it."
    return
}

Invoke-RjRbRestMethodGraph -Resource "/users/$($user.id)" -Method Patch -Body @{ usageLocation = $CountryCode } | Out-Null
"## Usage location of '$UserName' changed from '$($user.usageLocation)' to '$CountryCode'."
