<#
  .SYNOPSIS
  Create an IP-based named location for Conditional Access.

  .DESCRIPTION
  Creates a named location from a list of IPv4/IPv6 ranges in CIDR notation, for
  example an office or VPN egress range. Conditional Access policies can then
  reference the location, e.g. to skip MFA from trusted networks.

  .PARAMETER LocationName
  Display name of the new named location.

  .PARAMETER IpRanges
  One or more ranges in CIDR notation, e.g. 203.0.113.0/24.

  .PARAMETER MarkAsTrusted
  Mark the location as trusted. Trusted locations lower the sign-in risk that
  Identity Protection calculates.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.3" }

param(
    [Parameter(Mandatory = $true)]
    [string] $LocationName,
    [Parameter(Mandatory = $true)]
    [string[]] $IpRanges,
    [bool] $MarkAsTrusted = $false,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$existing = Invoke-RjRbRestMethodGraph -Resource "/identity/conditionalAccess/namedLocations" -OdFilter "displayName eq '$LocationName'"
if ($existing) {
    throw "A named location called '$LocationName' already exists."
}

$ranges = foreach ($range in $IpRanges) {
    $odataType = if ($range -like "*:*") { "#microsoft.graph.iPv6CidrRange" } else { "#microsoft.graph.iPv4CidrRange" }
    @{ "@odata.type" = $odataType; cidrAddress = $range.Trim() }
}

$body = @{
    "@odata.type" = "#microsoft.graph.ipNamedLocation"
    displayName   = $LocationName
    isTrusted     = $MarkAsTrusted
    ipRanges      = @($ranges)
}

$location = Invoke-RjRbRestMethodGraph -Resource "/identity/conditionalAccess/namedLocations" -Method Post -Body $body
"## Named location '$($location.displayName)' created with $(@($ranges).Count) range(s), id $($location.id)."
