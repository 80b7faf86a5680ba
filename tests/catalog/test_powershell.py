"""The script reader, form by form, against what PowerShell reports for the same script."""

from __future__ import annotations

import textwrap

import pytest

from rjsync.catalog.powershell import parse_script


def script(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def params(body: str):
    info = parse_script(script(body))
    assert [d for d in info.diagnostics if d.severity == "error"] == []
    return {p.name: p for p in info.parameters}


@pytest.mark.parametrize("declared, expected", [
    ("[string]", "String"), ("[String]", "String"), ("[bool]", "Boolean"), ("[int]", "Int32"),
    ("[string[]]", "String[]"), ("[datetime]", "DateTime"), ("[switch]", "SwitchParameter"),
    ("[System.String]", "String"), ("[long]", "Int64"), ("[hashtable]", "Hashtable"),
    ("[pscredential]", "PSCredential"), ("[object[]]", "Object[]"), ("[guid]", "Guid"),
    ("[System.Collections.Generic.List[string]]", "List`1"), ("", "Object"),
])
def test_parse_script_names_types_as_powershell_does(declared, expected):
    found = params(f"param(\n    {declared} $Value\n)\n")
    assert found["Value"].type == expected


@pytest.mark.parametrize("attribute, mandatory", [
    ("[Parameter(Mandatory)]", True),
    ("[Parameter(Mandatory = $true)]", True),
    ("[Parameter(Mandatory=$True)]", True),
    ("[parameter(mandatory = $false)]", False),
    ("[Parameter(Mandatory=$false, Position = 0)]", False),
    ("[Parameter()]", False),
    ("", False),
    ("[Parameter(ParameterSetName = 'a', Mandatory = $true)]\n[Parameter(Mandatory = $false)]",
     False),
])
def test_parse_script_reads_every_spelling_of_mandatory(attribute, mandatory):
    found = params(f"param(\n    {attribute}\n    [string] $Name\n)\n")
    assert found["Name"].mandatory is mandatory


def test_parse_script_keeps_declaration_order():
    found = parse_script("param([string]$Zeta, [int]$alpha, $Mid, [switch]$Beta)\n").parameters
    assert [p.name for p in found] == ["Zeta", "alpha", "Mid", "Beta"]


@pytest.mark.parametrize("default, value, expression", [
    ('"text"', "text", None),
    ("'it''s'", "it's", None),
    ('"tab`there ""quoted"""', 'tab\there "quoted"', None),
    ("30", 30, None),
    ("-5", -5, None),
    ("0x10", 16, None),
    ("1.5", 1.5, None),
    ("$true", True, None),
    ("$False", False, None),
    ("$null", None, None),
    ('@("a", "b")', ["a", "b"], '@("a", "b")'),
    ("@()", [], "@()"),
    ("(Get-Date).AddDays(-30)", None, "(Get-Date).AddDays(-30)"),
    ("$env:COMPUTERNAME", None, "$env:COMPUTERNAME"),
    ('"Hello $name"', None, '"Hello $name"'),
])
def test_parse_script_reads_defaults_as_typed_values_or_expressions(default, value, expression):
    found = params(f"param(\n    $Value = {default}\n)\n")
    assert found["Value"].default == value
    assert found["Value"].default_expression == expression


def test_parse_script_reads_here_string_defaults():
    found = params('''
        param(
            [string] $Body = @"
        Hello "there"
          second line
        "@,
            [string] $Raw = @'
        $not_a_variable
        '@
        )
    ''')
    assert found["Body"].default == 'Hello "there"\n  second line'
    assert found["Raw"].default == "$not_a_variable"


def test_parse_script_reports_zero_values_of_value_types_as_defaults():
    # Get-Help shows False for a [bool] or [switch] without a default, 0 for an [int].
    found = params("param([bool]$A, [switch]$B, [int]$C, [string]$D, $E)\n")
    assert [found[n].default for n in "ABCDE"] == [False, False, 0, None, None]


def test_parse_script_reads_validate_set_and_use_rjinterface():
    found = params('''
        param(
            [ValidateSet("Enable", 'Disable')]
            [string] $Action = "Enable",
            [ValidateScript( { Use-RJInterface -Type Graph -Entity User -DisplayName "Target user" } )]
            [String] $UserName,
            [ValidateScript({ Use-RJInterface -Type Setting -Attribute "RJReport.Mail" -Value $_ })]
            [string] $To
        )
    ''')
    assert found["Action"].validate_set == ["Enable", "Disable"]
    assert found["UserName"].rj_interface == {
        "Type": "Graph", "Entity": "User", "DisplayName": "Target user"}
    assert found["To"].rj_interface == {
        "Type": "Setting", "Attribute": "RJReport.Mail", "Value": "$_"}


def test_parse_script_reads_comments_between_attributes():
    found = params('''
        param(
            [Parameter(Mandatory = $true)]
            # the portal fills this in
            <# and a block comment #>
            [ValidateScript( { Use-RJInterface -Type Graph -Entity Device } )]
            [string] $DeviceId
        )
    ''')
    assert found["DeviceId"].mandatory is True
    assert found["DeviceId"].rj_interface == {"Type": "Graph", "Entity": "Device"}


def test_parse_script_is_not_fooled_by_braces_and_parens_in_strings_and_blocks():
    found = params('''
        param(
            [ValidateScript({ if ($_ -match "^\\(?[a-z]+\\)?$") { $true } else { throw "bad )" } })]
            [string] $Pattern = ")}",
            [string] $Next = '{(',
            [scriptblock] $Filter = { param($x) $x -gt 1 }
        )
        Write-Output "param(" # not a param block
    ''')
    assert list(found) == ["Pattern", "Next", "Filter"]
    assert found["Pattern"].default == ")}"
    assert found["Next"].default == "{("
    assert found["Filter"].default_expression == "{ param($x) $x -gt 1 }"


def test_parse_script_reports_an_unterminated_param_block():
    info = parse_script(script('''
        <#
        .SYNOPSIS
        Broken.
        #>
        param(
            [Parameter(Mandatory = $true)]
            [string] $UserName,
            [string] $Other = "x"

        Write-Output $UserName
    '''))
    errors = [d for d in info.diagnostics if d.severity == "error"]
    assert len(errors) == 1
    assert errors[0].message.startswith("param block cannot be parsed")
    assert 5 <= errors[0].line <= 11
    assert info.param_block_ok is False


def test_parse_script_reports_a_parameter_declared_twice():
    info = parse_script("param([string]$Name, [int]$name)\n")
    assert [d.message for d in info.diagnostics] == ["parameter $name is declared twice"]


def test_parse_script_without_param_block_has_no_parameters():
    info = parse_script("Write-Output 'hi'\n")
    assert info.parameters == [] and info.diagnostics == []


# --------------------------------------------------------------------------- #Requires


def requires(text: str):
    return [(r.name, r.minimum_version, r.required_version, r.maximum_version)
            for r in parse_script(script(text)).requires]


def test_parse_script_reads_requires_hashtables_and_plain_names():
    assert requires('''
        #Requires -Modules @{ModuleName = "RealmJoin.RunbookHelper"; ModuleVersion = "0.8.9" }
        #Requires -Modules MicrosoftTeams
        #Requires -Modules Az.Accounts, "Az.Resources"
        #requires -modules @{ ModuleName='Az.Storage' ; RequiredVersion='6.1.0' }, @{ModuleName="X"; ModuleVersion="1.0"; MaximumVersion="1.9"}
        #REQUIRES -Version 5.1 -Modules @{
        param()
    ''') == [
        ("RealmJoin.RunbookHelper", "0.8.9", None, None),
        ("MicrosoftTeams", None, None, None),
        ("Az.Accounts", None, None, None),
        ("Az.Resources", None, None, None),
        ("Az.Storage", None, "6.1.0", None),
        ("X", "1.0", None, "1.9"),
    ]


def test_parse_script_reads_requires_after_other_parameters_and_with_module_singular():
    assert requires('''
        #Requires -Version 7.2 -Module @{ModuleName="A";ModuleVersion="2.0"}
        #Requires -RunAsAdministrator
    ''') == [("A", "2.0", None, None)]


def test_parse_script_reports_a_requires_hashtable_without_module_name():
    info = parse_script('#Requires -Modules @{ModuleVersion = "1.0"}\n')
    assert info.requires == []
    assert [d.message for d in info.diagnostics] == [
        '#Requires -Modules: @{ModuleVersion = "1.0"} has no ModuleName']


# --------------------------------------------------------------------------- help


def test_parse_script_reads_comment_based_help_as_get_help_does():
    info = parse_script(script('''
        <#
          .SYNOPSIS
          Reset a user's password.

          .DESCRIPTION
          First line.
            Indented more.
          Last line.

          .PARAMETER UserName
          Who.
          .parameter Enable
             Whether.
          .NOTES
          Some notes.
          .INPUTS
          RunbookCustomization: {"Parameters": {}}
        #>
        param([string]$UserName, [bool]$Enable)
    '''))
    assert info.help.synopsis == "Reset a user's password."
    assert info.help.description == "First line.\n  Indented more.\nLast line."
    assert info.help.notes == "Some notes."
    assert [p.help for p in info.parameters] == ["Who.", "Whether."]
    assert [s.strip() for s in info.help.inputs] == ['RunbookCustomization: {"Parameters": {}}']


def test_parse_script_reads_help_written_as_line_comments():
    info = parse_script(script('''
        # .SYNOPSIS
        # Line-comment help.
        ## .DESCRIPTION
        ## Works too.

        param()
    '''))
    assert info.help.synopsis == "Line-comment help."
    assert info.help.description == "Works too."


def test_parse_script_ignores_a_help_block_glued_to_a_requires_line():
    # PowerShell reads adjacent comments as one block; the #Requires line is not a help keyword,
    # so the block is not help (Get-Help shows no synopsis).
    info = parse_script(script('''
        #Requires -Modules Foo
        <#
        .SYNOPSIS
        Not seen.
        #>
        param()
    '''))
    assert info.help is None


def test_parse_script_skips_a_leading_comment_that_is_not_help():
    info = parse_script(script('''
        # Copyright notice

        <#
        .SYNOPSIS
        The real help.
        #>
        param()
    '''))
    assert info.help.synopsis == "The real help."


def test_parse_script_rejects_a_block_with_an_unknown_keyword():
    info = parse_script(script('''
        <#
        .SYNOPSIS
        Has an author.
        .AUTHOR
        Someone
        #>
        param()
    '''))
    assert info.help is None


def test_parse_script_reads_help_at_the_end_of_the_script():
    info = parse_script(script('''
        param([string]$Name)
        Write-Output $Name
        <#
        .SYNOPSIS
        Help at the end.
        #>
    '''))
    assert info.help.synopsis == "Help at the end."


def test_parse_script_gives_help_next_to_a_function_to_the_function():
    info = parse_script(script('''
        <#
        .SYNOPSIS
        Belongs to the function.
        #>
        function Get-Thing { "x" }
    '''))
    assert info.help is None


def test_parse_script_reads_parameter_help_from_comments_in_the_param_block():
    info = parse_script(script('''
        <#
        .SYNOPSIS
        Parameter help inline.
        .PARAMETER Documented
        From the help block.
        #>
        param(
            # The user to act on.
            [string] $UserName,
            [string] $Documented,
            [int] $Count # how many
        )
    '''))
    assert [p.help for p in info.parameters] == [
        "The user to act on.", "From the help block.", None]


def test_parse_script_with_thousands_of_parameters_reads_each_ones_help():
    params = ",\n".join(f"    # Value number {n}.\n    [string] $P{n}" for n in range(2000))
    info = parse_script(f"<#\n.SYNOPSIS\nMany.\n.PARAMETER P7\nSeven.\n#>\nparam(\n{params}\n)\n")
    assert len(info.parameters) == 2000
    assert [(p.name, p.help) for p in info.parameters[:3]] == [("P0", "Value number 0."), ("P1", "Value number 1."),
                                                               ("P2", "Value number 2.")]
    assert (info.parameters[7].help, info.parameters[1999].help) == ("Seven.", "Value number 1999.")
