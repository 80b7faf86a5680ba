<#
  .SYNOPSIS
  Make a user an owner of a group.

  .DESCRIPTION
  Adds the selected user to the owners of a Microsoft 365 or security group. Owners
  can manage membership and settings of the group themselves, which takes load off
  the helpdesk.

  .PARAMETER GroupId
  Object ID of the group.

  .PARAMETER OwnerUserName
  User principal name of the new owner.

  .PARAMETER AlsoAddAsMember
  Also add the new owner as a member. Owners of Microsoft 365 groups usually want
  to be members too, so that they see the group mailbox and files.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }

param(
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity Group -DisplayName "Group" } )]
    [string] $GroupId,
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "New owner" } )]
    [string] $OwnerUserName,
    [switch] $AlsoAddAsMember,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$group = Invoke-RjRbRestMethodGraph -Resource "/groups/$GroupId" -OdSelect "id,displayName"
$user = Invoke-RjRbRestMethodGraph -Resource "/users/$OwnerUserName" -OdSelect "id,displayName"
$ref = @{ "@odata.id" = "https://graph.microsoft.com/v1.0/directoryObjects/$($user.id)" }

$owners = Invoke-RjRbRestMethodGraph -Resource "/groups/$($group.id)/owners" -OdSelect "id" -FollowPaging
if ($owners.id -contains $user.id) {
    "## '$($user.displayName)' already owns '$($group.displayName)'."
}
else {
    Invoke-RjRbRestMethodGraph -Resource "/groups/$($group.id)/owners/`$ref" -Method Post -Body $ref | Out-Null
    "## '$($user.displayName)' is now an owner of '$($group.displayName)'."
}

if ($AlsoAddAsMember) {
    $members = Invoke-RjRbRestMethodGraph -Resource "/groups/$($group.id)/members" -OdSelect "id" -FollowPaging
    if ($members.id -notcontains $user.id) {
        Invoke-RjRbRestMethodGraph -Resource "/groups/$($group.id)/members/`$ref" -Method Post -Body $ref | Out-Null
        "## '$($user.displayName)' added as a member as well."
    }
}
