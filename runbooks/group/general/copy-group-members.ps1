<#
  .SYNOPSIS
  Copy the members of one group into another group.

  .DESCRIPTION
  Reads the direct members of a source group and adds those that are missing to the
  target group (the selected group). Nothing is removed from the target group, so
  the runbook can be run repeatedly.

  .PARAMETER GroupId
  Object ID of the target group, i.e. the group the runbook was started on.

  .PARAMETER SourceGroupId
  Object ID of the group whose members are copied.

  .PARAMETER ObjectTypes
  Which kinds of members to copy. Allowed values are "user", "device" and "group".
  Nested groups are copied as groups, not expanded; add "group" only if the target
  group is a security group that supports nesting.

  .PARAMETER MaxMembers
  Safety limit: stop without changing anything if the source group has more
  members than this.

  .PARAMETER CallerName
  Name of the person who started the runbook; filled in by RealmJoin.
#>

#Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.3" }

param(
    [Parameter(Mandatory = $true)]
    [string] $GroupId,
    [Parameter(Mandatory = $true)]
    [ValidateScript( { Use-RJInterface -Type Graph -Entity Group -DisplayName "Copy members from" } )]
    [string] $SourceGroupId,
    [string[]] $ObjectTypes = @("user", "device"),
    [int] $MaxMembers = 500,
    [Parameter(Mandatory = $true)]
    [string] $CallerName
)

Write-RjRbLog -Message "Caller: '$CallerName'" -Verbose

Connect-RjRbGraph

$source = Invoke-RjRbRestMethodGraph -Resource "/groups/$SourceGroupId/members" -OdSelect "id,displayName" -FollowPaging
if (@($source).Count -gt $MaxMembers) {
    throw "Source group has $(@($source).Count) members, more than the limit of $MaxMembers."
}

$existing = @(Invoke-RjRbRestMethodGraph -Resource "/groups/$GroupId/members" -OdSelect "id" -FollowPaging).id
$added = 0

foreach ($member in $source) {
    $type = ($member.'@odata.type' -replace '^#microsoft\.graph\.', '')
    if ($ObjectTypes -notcontains $type -or $existing -contains $member.id) {
        continue
    }
    $ref = @{ "@odata.id" = "https://graph.microsoft.com/v1.0/directoryObjects/$($member.id)" }
    Invoke-RjRbRestMethodGraph -Resource "/groups/$GroupId/members/`$ref" -Method Post -Body $ref | Out-Null
    $added++
}

"## Added $added of $(@($source).Count) source members to the target group."
