"""Read a PowerShell script the way PowerShell and the RealmJoin portal read it.

The grammar is tree-sitter-powershell; this module walks its syntax tree to get the script's
``param(...)`` block (names, types as PowerShell names them, mandatory flags, defaults,
``ValidateSet`` values, ``Use-RJInterface`` arguments), its ``#Requires -Modules`` lines and its
comment-based help (see ``comment_help``). Pure: text in, values out.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import tree_sitter
import tree_sitter_powershell

from rjsync.catalog import comment_help
from rjsync.catalog.comment_help import Comment, HelpInfo

# PowerShell's type accelerators, as Get-Help names the type (.NET Type.Name).
_TYPE_NAMES = {
    "string": "String", "bool": "Boolean", "boolean": "Boolean", "int": "Int32",
    "int32": "Int32", "long": "Int64", "int64": "Int64", "int16": "Int16", "short": "Int16",
    "uint": "UInt32", "uint32": "UInt32", "ulong": "UInt64", "uint64": "UInt64",
    "uint16": "UInt16", "ushort": "UInt16", "byte": "Byte", "sbyte": "SByte",
    "char": "Char", "double": "Double", "float": "Single", "single": "Single",
    "decimal": "Decimal", "bigint": "BigInteger", "switch": "SwitchParameter",
    "switchparameter": "SwitchParameter", "datetime": "DateTime", "timespan": "TimeSpan",
    "guid": "Guid", "hashtable": "Hashtable", "array": "Array", "object": "Object",
    "psobject": "PSObject", "pscustomobject": "PSObject", "psobject[]": "PSObject[]",
    "scriptblock": "ScriptBlock", "securestring": "SecureString",
    "pscredential": "PSCredential", "uri": "Uri", "version": "Version",
    "semver": "SemanticVersion", "xml": "XmlDocument", "regex": "Regex",
    "ipaddress": "IPAddress", "mailaddress": "MailAddress", "ref": "PSReference",
    "ordered": "OrderedDictionary", "type": "Type", "void": "Void",
    "cultureinfo": "CultureInfo", "datetimeoffset": "DateTimeOffset",
}

_ZERO_VALUES = {
    "Boolean": False, "SwitchParameter": False, "Int32": 0, "Int64": 0, "Int16": 0,
    "UInt32": 0, "UInt64": 0, "UInt16": 0, "Byte": 0, "SByte": 0, "Double": 0.0, "Single": 0.0,
    "Decimal": 0,
}

_WRAPPERS = {
    "logical_expression", "bitwise_expression", "comparison_expression",
    "additive_expression", "multiplicative_expression", "format_expression",
    "range_expression", "array_literal_expression", "unary_expression", "pipeline",
    "pipeline_chain", "string_literal", "integer_literal", "statement_list",
}

_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t", "v": "\v"}


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@dataclass
class Parameter:
    name: str
    type: str
    mandatory: bool
    default: Any = None
    default_expression: str | None = None
    help: str | None = None
    validate_set: list[str] | None = None
    rj_interface: dict[str, Any] | None = None
    line: int = 0


@dataclass
class ModuleRequirement:
    name: str
    minimum_version: str | None = None
    required_version: str | None = None
    maximum_version: str | None = None
    guid: str | None = None
    line: int = 0


@dataclass
class ScriptDiagnostic:
    severity: str  # "error" | "warning" | "info"
    line: int
    message: str


@dataclass
class ScriptInfo:
    help: HelpInfo | None
    parameters: list[Parameter]
    requires: list[ModuleRequirement]
    diagnostics: list[ScriptDiagnostic] = field(default_factory=list)
    param_block_ok: bool = True


# --------------------------------------------------------------------------- tree helpers


def _text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8", errors="replace")


def _line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def _unwrap(node: tree_sitter.Node) -> tree_sitter.Node:
    """Descend through single-child expression wrappers to the node that means something."""
    while node.type in _WRAPPERS and node.named_child_count == 1 and node.child_count == 1:
        node = node.children[0]
    return node


def _leaves(node: tree_sitter.Node):
    """Every leaf token in source order (comments included)."""
    cursor = node.walk()
    descending = True
    while True:
        if descending and cursor.goto_first_child():
            continue
        current = cursor.node
        if current.child_count == 0 and current.end_byte > current.start_byte:
            yield current
        if cursor.goto_next_sibling():
            descending = True
            continue
        while True:
            if not cursor.goto_parent():
                return
            if cursor.goto_next_sibling():
                break
        descending = True


def _first_error(node: tree_sitter.Node) -> tree_sitter.Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    if not node.has_error:
        return None
    for child in node.children:
        found = _first_error(child)
        if found is not None:
            return found
    return node


# --------------------------------------------------------------------------- literal values


class _NotLiteral(Exception):
    pass


def _string_value(node: tree_sitter.Node) -> str:
    kind = node.type
    raw = _text(node)
    if kind == "verbatim_string_characters":
        return raw[1:-1].replace("''", "'")
    if kind == "verbatim_here_string_characters":
        return _here_body(raw)
    if kind in ("expandable_string_literal", "expandable_here_string_literal"):
        if any(c.type in ("variable", "sub_expression") for c in node.named_children):
            raise _NotLiteral
        body = _here_body(raw) if kind.startswith("expandable_here") else raw[1:-1]
        if kind == "expandable_string_literal":
            body = body.replace('""', '"')
        return re.sub(r"`(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)
    raise _NotLiteral


def _here_body(raw: str) -> str:
    # @"<newline> ... <newline>"@ : the text between the first and the last line break.
    start = raw.find("\n") + 1
    end = raw.rfind("\n")
    body = raw[start:end] if end >= start else ""
    return body[:-1] if body.endswith("\r") else body


_INT_SUFFIX = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}


def _number(raw: str) -> int | float:
    text = raw.lower()
    multiplier = 1
    for suffix, factor in _INT_SUFFIX.items():
        if text.endswith(suffix):
            text, multiplier = text[: -len(suffix)], factor
            break
    text = text.rstrip("lud") if text.startswith("0x") is False else text.rstrip("lu")
    try:
        value: int | float = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError as exc:
            raise _NotLiteral from exc
    return value * multiplier


def literal(node: tree_sitter.Node) -> tuple[Any, bool]:
    """Evaluate a literal expression: (value, folded).

    ``folded`` is True when PowerShell itself folds the expression to a constant (strings,
    numbers, ``$true``/``$false``/``$null``, a sign on a number); arrays evaluate but are
    expressions to PowerShell. Raises _NotLiteral for anything that needs running.
    """
    node = _unwrap(node)
    kind = node.type
    if kind in ("verbatim_string_characters", "verbatim_here_string_characters",
                "expandable_string_literal", "expandable_here_string_literal"):
        return _string_value(node), True
    if kind in ("decimal_integer_literal", "hexadecimal_integer_literal", "real_literal"):
        return _number(_text(node)), True
    if kind == "variable":
        name = _text(node).lower()
        if name in ("$true", "$false", "$null"):
            return {"$true": True, "$false": False, "$null": None}[name], True
        raise _NotLiteral
    if kind == "expression_with_unary_operator" and node.child_count == 2:
        operator = _text(node.children[0])
        value, folded = literal(node.children[1])
        if operator in ("-", "+") and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            return (-value if operator == "-" else value), folded
        raise _NotLiteral
    if kind == "array_literal_expression":
        return [literal(c)[0] for c in node.named_children], False
    if kind == "array_expression":
        inner = [c for c in node.named_children if c.type == "statement_list"]
        if not inner:
            return [], False
        statements = inner[0].named_children
        if len(statements) != 1:
            raise _NotLiteral
        value, _ = literal(statements[0])
        return (value if isinstance(value, list) else [value]), False
    raise _NotLiteral


# --------------------------------------------------------------------------- types


def type_name(type_literal: tree_sitter.Node) -> str:
    """The .NET ``Type.Name`` PowerShell shows for a type literal like ``[string[]]``."""
    spec = next((c for c in type_literal.named_children if c.type == "type_spec"), None)
    raw = _text(spec) if spec is not None else _text(type_literal).strip("[]")
    return _type_name(re.sub(r"\s+", "", raw))


def _type_name(raw: str) -> str:
    suffix = ""
    while raw.endswith("]") and re.search(r"\[,*\]$", raw):
        match = re.search(r"\[,*\]$", raw)
        suffix = match.group(0) + suffix
        raw = raw[: match.start()]
    generic = re.match(r"^([^\[]+)\[(.*)\]$", raw)
    if generic:
        arguments = _split_generic(generic.group(2))
        base = generic.group(1).split(".")[-1].split("`")[0]
        return f"{base}`{len(arguments)}{suffix}"
    key = raw.lower()
    if key.startswith("system."):
        key = key[len("system."):]
    if key in _TYPE_NAMES:
        return _TYPE_NAMES[key] + suffix
    return raw.split(".")[-1] + suffix


def _split_generic(text: str) -> list[str]:
    depth, parts, current = 0, [], ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


# --------------------------------------------------------------------------- attributes


def _attribute_name(attribute: tree_sitter.Node) -> str:
    name = next((c for c in attribute.named_children if c.type == "attribute_name"), None)
    return _text(name).split(".")[-1].lower() if name is not None else ""


def _attribute_arguments(attribute: tree_sitter.Node):
    """Yield (name or None, value node or None) per argument of an attribute."""
    args = next((c for c in attribute.named_children if c.type == "attribute_arguments"), None)
    if args is None:
        return
    for argument in args.named_children:
        if argument.type != "attribute_argument":
            continue
        named = [c for c in argument.children]
        if named and named[0].type == "simple_name":
            value = next((c for c in named[1:] if c.is_named), None)
            yield _text(named[0]), value
        else:
            value = next((c for c in named if c.is_named), None)
            yield None, value


def _truthy(node: tree_sitter.Node | None) -> bool:
    if node is None:  # [Parameter(Mandatory)]
        return True
    try:
        value, _ = literal(node)
    except _NotLiteral:
        return True  # an expression: PowerShell evaluates it; assume it is meant as set
    return bool(value)


def _rj_interface(block: tree_sitter.Node) -> dict[str, Any] | None:
    """Arguments of a ``Use-RJInterface`` call inside a ``ValidateScript`` script block."""
    stack = [block]
    while stack:
        node = stack.pop()
        if node.type == "command":
            name = next((c for c in node.named_children if c.type == "command_name"), None)
            if name is not None and _text(name).lower() == "use-rjinterface":
                return _command_arguments(node)
        stack.extend(reversed(node.named_children))
    return None


def _command_arguments(command: tree_sitter.Node) -> dict[str, Any]:
    result: dict[str, Any] = {}
    elements = next((c for c in command.named_children if c.type == "command_elements"), None)
    if elements is None:
        return result
    current: str | None = None
    for element in elements.named_children:
        if element.type == "command_argument_sep":
            continue
        if element.type == "command_parameter":
            raw = _text(element)[1:]
            if raw.endswith(":"):
                raw = raw[:-1]
            current = raw
            result[current] = True
            continue
        if current is None:
            continue
        if element.type == "generic_token":
            result[current] = _text(element)
        else:
            try:
                result[current] = literal(element)[0]
            except _NotLiteral:
                result[current] = _text(element)
        current = None
    return result


# --------------------------------------------------------------------------- param block


def _parameter(node: tree_sitter.Node) -> Parameter:
    attributes = []
    variable = default = None
    for child in node.named_children:
        if child.type == "attribute_list":
            attributes.extend(a for a in child.named_children if a.type == "attribute")
        elif child.type == "variable":
            variable = child
        elif child.type == "script_parameter_default":
            default = next((c for c in child.named_children), None)
    raw_name = _text(variable) if variable is not None else "$"
    name = raw_name[2:-1] if raw_name.startswith("${") else raw_name[1:]
    if ":" in name:  # $script:x is not a parameter name PowerShell accepts; keep as written
        name = name.split(":", 1)[1]

    param = Parameter(name=name, type="Object", mandatory=False, line=_line(node))
    type_seen = False
    mandatory_sets: list[tuple[bool, bool]] = []  # (applies to all sets, mandatory)
    for attribute in attributes:
        literal_type = next((c for c in attribute.named_children if c.type == "type_literal"),
                            None)
        if literal_type is not None:
            if not type_seen:
                param.type = type_name(literal_type)
                type_seen = True
            continue
        kind = _attribute_name(attribute)
        arguments = list(_attribute_arguments(attribute))
        if kind in ("parameter", "parameterattribute"):
            mandatory = False
            all_sets = True
            for arg_name, value in arguments:
                key = (arg_name or "").lower()
                if key == "mandatory":
                    mandatory = _truthy(value)
                elif key == "parametersetname" and value is not None:
                    try:
                        all_sets = literal(value)[0] == "__AllParameterSets"
                    except _NotLiteral:
                        all_sets = False
            mandatory_sets.append((all_sets, mandatory))
        elif kind in ("validateset", "validatesetattribute"):
            values = []
            for arg_name, value in arguments:
                if arg_name is None and value is not None:
                    try:
                        evaluated = literal(value)[0]
                    except _NotLiteral:
                        evaluated = _text(value)
                    values.extend(evaluated if isinstance(evaluated, list) else [evaluated])
            param.validate_set = [str(v) for v in values]
        elif kind in ("validatescript", "validatescriptattribute"):
            for _, value in arguments:
                if value is not None:
                    found = _rj_interface(value)
                    if found is not None:
                        param.rj_interface = found
    if mandatory_sets:
        # Get-Help reports the flag of the all-sets declaration, else of the first set.
        chosen = next((m for all_sets, m in mandatory_sets if all_sets), mandatory_sets[0][1])
        param.mandatory = chosen

    if default is None:
        # A value-typed parameter that is not given holds its type's zero value, and PowerShell
        # reports that as its default (a [bool] or [switch] is False, an [int] 0).
        param.default = _ZERO_VALUES.get(param.type)
    else:
        expression = _text(default)
        try:
            value, folded = literal(default)
        except _NotLiteral:
            param.default_expression = expression
        else:
            param.default = value
            if not folded:
                param.default_expression = expression
    return param


def _script_param_block(root: tree_sitter.Node) -> tree_sitter.Node | None:
    for child in root.named_children:
        if child.type == "param_block":
            return child
    return None


def _param_block_error(root: tree_sitter.Node) -> tree_sitter.Node | None:
    """The first syntax error at or inside the script's param block, if any."""
    block = _script_param_block(root)
    if block is not None:
        error = _first_error(block)
        if error is not None:
            return error
        return None
    # No param block parsed: was one intended? Look for an error near a `param` keyword.
    if not root.has_error:
        return None
    keyword = next((leaf for leaf in _leaves(root) if leaf.type == "param"), None)
    if keyword is None:
        return None
    parent = keyword.parent
    return parent if parent is not None and parent.type == "ERROR" and parent != root \
        else keyword


# --------------------------------------------------------------------------- #Requires


_REQUIRES = re.compile(r"^#requires\s", re.IGNORECASE)


def _top_level(text: str):
    """Yield the indexes of the characters of ``text`` that stand outside quotes and brackets."""
    depth = 0
    quote: str | None = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        elif depth == 0:
            yield index


def _split_requires(text: str) -> list[tuple[str, str]]:
    """Split a ``#Requires`` line into (parameter, argument text) pairs.

    The argument list of ``-Modules`` is a comma-separated list of names and hashtables; this
    scanner only finds where each parameter's argument starts and ends (quotes and braces
    respected). The hashtables themselves are read by the grammar.
    """
    starts = []  # (index of '-', parameter name, index where its argument starts)
    for index in _top_level(text):
        if text[index] == "-" and (index == 0 or text[index - 1].isspace()):
            match = re.match(r"-([A-Za-z]+)", text[index:])
            if match:
                starts.append((index, match.group(1), index + match.end()))
    ends = [start for start, _, _ in starts[1:]] + [len(text)]
    return [(name, text[begin:end]) for (_, name, begin), end in zip(starts, ends)]


def _split_list(text: str) -> list[str]:
    """Split a comma-separated argument list at its top-level commas."""
    cuts = [index for index in _top_level(text) if text[index] == ","]
    bounds = zip([-1] + cuts, cuts + [len(text)])
    items = [text[begin + 1:end].strip() for begin, end in bounds]
    return [item for item in items if item]


def _hashtable(text: str) -> dict[str, Any]:
    tree = _parser().parse(("$x = " + text).encode("utf-8"))
    if tree.root_node.has_error:
        raise ValueError("not a hashtable")
    table: dict[str, Any] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "hash_entry":
            key_node = next(c for c in node.named_children if c.type == "key_expression")
            value_node = next((c for c in node.named_children if c.type != "key_expression"),
                              None)
            key = _text(key_node).strip().strip("'\"")
            try:
                table[key.lower()] = literal(value_node)[0] if value_node is not None else None
            except _NotLiteral:
                table[key.lower()] = _text(value_node).strip()
            continue
        stack.extend(node.named_children)
    return table


def parse_requires(comment: Comment) -> tuple[list[ModuleRequirement], list[ScriptDiagnostic]]:
    text = comment.text[len("#requires"):] if comment.text.lower().startswith("#requires") \
        else comment.text
    requirements: list[ModuleRequirement] = []
    diagnostics: list[ScriptDiagnostic] = []
    for parameter, argument in _split_requires(text):
        if not "modules".startswith(parameter.lower()) or len(parameter) < 3:
            continue
        for item in _split_list(argument):
            if item.startswith("@{"):
                try:
                    table = _hashtable(item)
                except ValueError:
                    diagnostics.append(ScriptDiagnostic(
                        "error", comment.start_line,
                        f"#Requires -Modules: cannot read the module specification {item}"))
                    continue
                name = table.get("modulename")
                if not isinstance(name, str) or not name:
                    diagnostics.append(ScriptDiagnostic(
                        "error", comment.start_line,
                        f"#Requires -Modules: {item} has no ModuleName"))
                    continue
                requirements.append(ModuleRequirement(
                    name=name,
                    minimum_version=_version(table.get("moduleversion")),
                    required_version=_version(table.get("requiredversion")),
                    maximum_version=_version(table.get("maximumversion")),
                    guid=table.get("guid") if isinstance(table.get("guid"), str) else None,
                    line=comment.start_line,
                ))
            else:
                name = item.strip("'\"")
                requirements.append(ModuleRequirement(name=name, line=comment.start_line))
    return requirements, diagnostics


def _version(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


# --------------------------------------------------------------------------- the script


@lru_cache(maxsize=1)
def _comment_query() -> tree_sitter.Query:
    return tree_sitter.Query(tree_sitter.Language(tree_sitter_powershell.language()),
                             "(comment) @comment")


def _comments(root: tree_sitter.Node) -> tuple[list[Comment], list[Comment], list[Comment]]:
    """All comments, those before the first code token, and those after the last one."""
    captures = tree_sitter.QueryCursor(_comment_query()).captures(root).get("comment", [])
    nodes = sorted(captures, key=lambda n: n.start_byte)
    code = [c for c in root.children if c.type != "comment" and c.end_byte > c.start_byte]
    first_code = code[0].start_byte if code else None
    last_code = code[-1].end_byte if code else None
    everything, leading, trailing = [], [], []
    for node in nodes:
        comment = Comment(_text(node), node.start_point[0] + 1, node.end_point[0] + 1)
        everything.append(comment)
        if first_code is None or node.start_byte < first_code:
            leading.append(comment)
        if last_code is None or node.start_byte >= last_code:
            trailing.append(comment)
    return everything, leading, trailing


def _first_function_line(root: tree_sitter.Node) -> int | None:
    statements = next((c for c in root.named_children if c.type == "statement_list"), None)
    if statements is None or not statements.named_children:
        return None
    first = statements.named_children[0]
    return _line(first) if first.type == "function_statement" else None


def _parameter_help_from_comments(
    block: tree_sitter.Node, parameters: list[tree_sitter.Node]
) -> list[str]:
    """Help written as comments in the param block, next to each parameter (PowerShell's rule:
    the comment block ending at most two lines above it, comments inside it, and the block
    right after it)."""
    leaves = list(_leaves(block))
    starts = [leaf.start_byte for leaf in leaves]  # sorted: leaves come in source order
    result = []
    for node in parameters:
        first = bisect.bisect_left(starts, node.start_byte)
        lines: list[str] = []
        before: list[tree_sitter.Node] = []
        min_end = _line(node) - 2
        for index in range(first - 1, -1, -1):
            leaf = leaves[index]
            if leaf.end_point[0] + 1 < min_end or leaf.type != "comment":
                break
            before.append(leaf)
            min_end = leaf.start_point[0]
        for leaf in reversed(before):
            lines.extend(comment_help.comment_lines(_text(leaf)))
        last = first
        while last < len(leaves) and leaves[last].end_byte <= node.end_byte:
            if leaves[last].type == "comment":
                lines.extend(comment_help.comment_lines(_text(leaves[last])))
            last += 1
        result.append(comment_help.parameter_comment(lines))
    return result


def parse_script(text: str) -> ScriptInfo:
    """Parse a script's text (already decoded, BOM removed) into its catalog facts."""
    source = text.encode("utf-8")
    tree = _parser().parse(source)
    root = tree.root_node
    diagnostics: list[ScriptDiagnostic] = []

    comments, leading, trailing = _comments(root)
    help_info = comment_help.find_script_help(leading, trailing, _first_function_line(root))

    requires: list[ModuleRequirement] = []
    for token in comments:
        if _REQUIRES.match(token.text):
            found, problems = parse_requires(token)
            requires.extend(found)
            diagnostics.extend(problems)

    parameters: list[Parameter] = []
    block_ok = True
    error = _param_block_error(root)
    if error is not None:
        block_ok = False
        if error.type == "param":
            message = "param block cannot be parsed: check its brackets, quotes and commas"
        else:
            snippet = _text(error).strip().splitlines()[0][:40] if _text(error).strip() else ""
            message = "param block cannot be parsed" + (f" near {snippet!r}" if snippet else "")
        diagnostics.append(ScriptDiagnostic("error", _line(error), message))
    block = _script_param_block(root)
    if block is not None and block_ok:
        plist = next((c for c in block.named_children if c.type == "parameter_list"), None)
        nodes = [c for c in plist.named_children if c.type == "script_parameter"] if plist else []
        try:
            parameters = [_parameter(node) for node in nodes]
        except RecursionError:  # a literal nested ~1,000 deep (@(@(...))): literal() recurses
            block_ok, parameters = False, []
            diagnostics.append(ScriptDiagnostic("error", _line(block), "param block is nested too deeply to be read"))
        comments = None
        for index, param in enumerate(parameters):
            if help_info is not None and param.name.upper() in help_info.parameters:
                param.help = help_info.parameters[param.name.upper()] or None
            else:
                if comments is None:
                    comments = _parameter_help_from_comments(block, nodes)
                param.help = comments[index] or None

    seen: dict[str, int] = {}
    for param in parameters:
        key = param.name.lower()
        if key in seen:
            diagnostics.append(ScriptDiagnostic(
                "error", param.line, f"parameter ${param.name} is declared twice"))
        seen[key] = param.line
    return ScriptInfo(help=help_info, parameters=parameters, requires=requires,
                      diagnostics=diagnostics, param_block_ok=block_ok)
