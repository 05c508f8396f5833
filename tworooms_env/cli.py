"""One command-line mechanism for every entry point: a typed dataclass config becomes its flags.

    cli = ConfigCLI(TrainConfig, prog="tworooms-train", presets=PRESETS, default_preset="cpu")
    cfg = cli.parse(["--preset", "tiny", "--lr", "3e-4", "batch_size=16", "--no-tensorboard"])

Every field ``name: T = default  # help`` of the dataclass (and of an optional second dataclass of
run options, ``extra``) is a flag ``--name-in-kebab-case``; the trailing comment (or
``field(metadata={"help": ...})``) is its help text. Types: ``int``, ``float``, ``str`` (with
``metadata={"choices": [...]}`` for a closed set computed at import), ``bool`` (``--x`` / ``--no-x``),
``Literal[...]`` (choices), ``X | None`` (``none`` gives None), ``list[str]`` (one or more values,
repeatable). ``metadata={"const": v}`` lets the flag stand alone (``--resume`` means ``"auto"``).

Spellings accepted for every key: ``--key-name value``, ``--key-name=value``, ``--key_name value``
and ``key_name=value`` (the spelling of the trainers' docs); for bools also ``key=true|false``.
``--preset NAME`` (or ``preset=NAME``) starts from a preset, then the other flags override it. An
unknown key is an error naming it and the known keys; the dataclass's ``__post_init__`` checks the
values (ranges, choices). Renamed keys (``DEPRECATED_KEYS``, e.g. ``num_threads`` -> ``threads``)
and values (``amp=true``, ``resume=auto``) still work for one version, with a printed warning line
and a ``DeprecationWarning``.

The flags that several entry points share keep one name and one meaning (``SHARED_KEYS``):
``--threads`` (torch CPU threads, 0: torch's default), ``--out-dir`` (directory of a run's
outputs), ``--max-minutes`` (wall-clock budget, 0: none), ``--resume`` (continue from the
checkpoint in ``--out-dir``), ``--amp auto|bf16|off``, ``--device auto|cpu|cuda|cuda:N`` and
``--seed``. Standard library only, so that every package of the project may import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import io
import re
import sys
import tokenize
import types
import typing
import warnings
from typing import Any, Callable, Literal, Mapping, Sequence

SHARED_KEYS = ("threads", "out_dir", "max_minutes", "resume", "amp", "device", "seed")
# old spelling -> key, accepted for one version (0.3) with a warning
DEPRECATED_KEYS = {"num_threads": "threads", "out": "out_dir", "minutes": "max_minutes"}
AMP_CHOICES = ("auto", "bf16", "off")
REMOVAL = "0.4"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError, ImportError, NotADirectoryError,
               IsADirectoryError, PermissionError)


class ConfigError(ValueError):
    """A command line that cannot be read: unknown key, bad value, missing value."""


def kebab(key: str) -> str:
    return key.replace("_", "-")


def parse_bool(text: str, key: str = "value") -> bool:
    low = str(text).lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"config key {key!r} expects a bool (true/false), got {text!r}")


def deprecated(message: str) -> None:
    """A printed warning line, plus a DeprecationWarning (hidden by Python's default filters, so that
    the line shows once; ``pytest.warns`` and ``-W error`` see it)."""
    print(f"warning: {message}", file=sys.stderr)
    warnings.warn(message, DeprecationWarning, stacklevel=1)


def field_comments(cls: type) -> dict[str, str]:
    """``{field: trailing comment}`` of a dataclass and its bases, read from their source ("" if none)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        name, depth = None, 0
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.INDENT:
                depth += 1
            elif tok.type == tokenize.DEDENT:
                depth -= 1
            elif tok.type == tokenize.NAME and depth == 1 and tok.start[1] == tok.line.index(tok.string) \
                    and re.match(rf"\s*{tok.string}\s*:", tok.line):
                name = tok.string
            elif tok.type == tokenize.COMMENT and name is not None:
                out[name] = tok.string.lstrip("#").strip()
            elif tok.type == tokenize.NEWLINE:
                name = None
    return out


@dataclasses.dataclass
class Option:
    """One flag: its key, kind (int | float | str | bool | list), choices and help."""

    key: str
    kind: type
    help: str
    choices: tuple | None = None
    optional: bool = False  # "none" reads as None
    const: Any = None  # the value of the flag standing alone (with has_const)
    has_const: bool = False
    extra: bool = False  # a run option (the ``extra`` dataclass), not a config field

    def convert(self, text: str) -> Any:
        if self.optional and text.lower() in ("none", "null"):
            return None
        try:
            value = self.kind(text) if self.kind in (int, float) else text
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects {'an' if self.kind is int else 'a'} "
                                             f"{self.kind.__name__}, got {text!r}") from None
        if self.choices is not None and value not in self.choices:
            raise argparse.ArgumentTypeError(f"expects one of {', '.join(map(str, self.choices))}, got {text!r}")
        return value


def _option(f: dataclasses.Field, hint: Any, comments: Mapping[str, str], extra: bool) -> Option:
    meta = f.metadata
    optional, choices = False, meta.get("choices")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        kind, choices = type(args[0]), args
    elif origin is list:
        kind = list
    elif hint in (int, float, str, bool):
        kind = hint
    else:
        raise TypeError(f"{f.name}: type {hint!r} has no command-line form")
    return Option(f.name, kind, meta.get("help", comments.get(f.name, "")), tuple(choices) if choices else None,
                  optional, meta.get("const"), "const" in meta, extra)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        m = re.match(r"argument --([\w-]+)[^:]*: (.*)$", message)  # "argument --batch-size: expects an int, ..."
        raise ConfigError(f"config key {m.group(1).replace('-', '_')!r} {m.group(2)}" if m else message)


class _Bool(argparse.Action):
    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class ConfigCLI:
    """Flags of the dataclass ``config`` (plus the run options of ``extra``); see the module docstring.

    ``aliases``: this entry point's renamed keys (old -> new), added to those of DEPRECATED_KEYS whose
    new key exists here."""

    def __init__(self, config: type, *, prog: str, description: str = "", presets: Mapping[str, dict] | None = None,
                 default_preset: str | None = None, extra: type | None = None, aliases: Mapping[str, str] | None = None):
        self.config, self.extra, self.prog, self.description = config, extra, prog, description
        self.presets, self.default_preset = dict(presets or {}), default_preset
        self.options: dict[str, Option] = {}
        for cls, is_extra in ((config, False), (extra, True)):
            if cls is None:
                continue
            hints, comments = typing.get_type_hints(cls), field_comments(cls)
            for f in dataclasses.fields(cls):
                if f.name != "preset" and f.init:
                    self.options[f.name] = _option(f, hints[f.name], comments, is_extra)
        self.aliases = {old: new for old, new in {**DEPRECATED_KEYS, **(aliases or {})}.items()
                        if new in self.options and old not in self.options}

    # ------------------------------------------------------------------ reading argv
    def _key(self, name: str) -> tuple[str, bool]:
        """(key, negated) of a flag name in any spelling; renamed keys warn."""
        key = name.replace("-", "_")
        negated = key.startswith("no_") and key[3:] in self.options and self.options[key[3:]].kind is bool
        key = key[3:] if negated else key
        if key in self.aliases:
            new = self.aliases[key]
            deprecated(f"{self.prog}: '{name}' is deprecated and will be removed in {REMOVAL}; use --{kebab(new)}")
            key = new
        return key, negated

    def _value(self, opt: Option, text: str) -> str | None:
        """Deprecated values: amp as a bool, resume=auto. None: the flag stands alone."""
        if opt.key == "amp" and opt.kind is str and text.lower() in _TRUE + _FALSE and text.lower() != "off":
            new = "auto" if text.lower() in _TRUE else "off"
            deprecated(f"{self.prog}: amp={text} is deprecated and will be removed in {REMOVAL}; use --amp {new}")
            return new
        if opt.key == "resume" and text == "auto":
            deprecated(f"{self.prog}: resume=auto is deprecated and will be removed in {REMOVAL}; use --resume")
            return "true" if opt.kind is bool else None
        if opt.has_const and text.lower() in _TRUE + _FALSE:  # --resume=true: the flag alone; false: not given
            return None if text.lower() in _TRUE else ""
        return text

    def normalise(self, argv: Sequence[str]) -> tuple[str | None, list[str]]:
        """(preset, argv in the canonical ``--kebab-key[=value]`` spelling)."""
        preset, out, args, i = None, [], list(argv), 0
        while i < len(args):
            tok = args[i]
            if not tok.startswith("--") and "=" in tok and _KEY.match(tok.split("=", 1)[0]):
                tok = "--" + tok  # key=value
                if tok[2:].split("=", 1)[0].replace("-", "_") not in {*self.options, *self.aliases, "preset"}:
                    raise self._unknown([tok])
            if not tok.startswith("--") or tok in ("--", "--help"):
                out.append(tok)
                i += 1
                continue
            name, eq, value = tok[2:].partition("=")
            nxt = args[i + 1] if i + 1 < len(args) else None
            if name == "preset":
                if not eq and nxt is None:
                    raise ConfigError("--preset needs a value")
                preset, i = (value, i + 1) if eq else (nxt, i + 2)
                continue
            key, negated = self._key(name)
            opt = self.options.get(key)
            if opt is None:
                out.append(tok)
            elif opt.kind is bool:
                if not eq and not negated and nxt is not None and nxt.lower() in _TRUE + _FALSE:
                    eq, value, i = "=", nxt, i + 1  # --key true
                flag = parse_bool(self._value(opt, value), key) if eq else True
                out.append(f"--{'' if flag != negated else 'no-'}{kebab(key)}")
            elif opt.kind is list:
                out.append(f"--{kebab(key)}" + (f"={value}" if eq else ""))
                while not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
                    out.append(args[i + 1])
                    i += 1
            else:
                if eq:
                    value = self._value(opt, value)
                elif nxt is not None and (not opt.has_const or nxt.lower() in _TRUE + _FALSE):
                    eq, value, i = "=", self._value(opt, nxt), i + 1
                out.append(f"--{kebab(key)}" + (f"={value}" if eq and value is not None else ""))
            i += 1
        return preset, out

    def _unknown(self, tokens: Sequence[str]) -> ConfigError:
        names = [t.split("=", 1)[0].lstrip("-") for t in tokens if t.startswith("-")] or list(tokens)
        known = sorted(kebab(k) for k in self.options)
        hints = [m for n in names for m in difflib.get_close_matches(kebab(n.replace("_", "-")), known, n=1)]
        did = f" (did you mean --{hints[0]}?)" if hints else ""
        what = "key" if len(names) == 1 else "keys"
        return ConfigError(f"unknown config {what} {', '.join(map(repr, names))}{did}; known keys: "
                           + ", ".join(f"--{k}" for k in (["preset"] if self.presets else []) + known))

    # ------------------------------------------------------------------ parser and help
    def defaults(self, preset: str | None) -> tuple[dict, dict]:
        """(config defaults under ``preset``, run-option defaults)."""
        values = {}
        for f in dataclasses.fields(self.config):
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
        values.update(self.presets.get(preset, {}) if preset else {})
        extra = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                 for f in dataclasses.fields(self.extra)} if self.extra else {}
        return values, extra

    def parser(self, preset: str | None = None) -> argparse.ArgumentParser:
        preset = preset or self.default_preset
        values, extra = self.defaults(preset)
        head = f"[--preset {{{','.join(self.presets)}}}] " if self.presets else ""
        p = _Parser(prog=self.prog, description=self.description, argument_default=argparse.SUPPRESS,
                    usage=f"%(prog)s {head}[--KEY VALUE | KEY=VALUE ...]", allow_abbrev=False,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="Every --key-name also reads as key_name=VALUE; a bool as --x / --no-x or x=true|false.")
        if self.presets:
            p.add_argument("--preset", choices=list(self.presets),
                           help=f"start from these settings, then apply the other flags (default: {self.default_preset})")
        groups = {False: p.add_argument_group(f"configuration (defaults of preset {preset})" if preset else "configuration"),
                  True: p.add_argument_group("run options")}
        for opt in self.options.values():
            default = (extra if opt.extra else values).get(opt.key)
            text = f"{opt.help} (default: {default!r})" if opt.help else f"(default: {default!r})"
            flag, group = f"--{kebab(opt.key)}", groups[opt.extra]
            if opt.kind is bool:
                group.add_argument(flag, f"--no-{kebab(opt.key)}", dest=opt.key, action=_Bool, help=text)
            elif opt.kind is list:
                group.add_argument(flag, dest=opt.key, action="extend", nargs="+", metavar="VALUE", help=text)
            else:
                metavar = "{" + ",".join(map(str, opt.choices)) + "}" if opt.choices else opt.kind.__name__.upper()
                kw = {"nargs": "?", "const": opt.const} if opt.has_const else {}
                group.add_argument(flag, dest=opt.key, type=opt.convert, metavar=metavar, help=text, **kw)
        return p

    # ------------------------------------------------------------------ parsing
    def parse_given(self, argv: Sequence[str] | None) -> tuple[str | None, dict, dict]:
        """(preset, config keys given, run options given) of a command line; --help prints and exits 0."""
        preset, args = self.normalise(list(sys.argv[1:] if argv is None else argv))
        if preset is not None and preset not in self.presets:
            raise ConfigError(f"unknown preset {preset!r}; expected one of {', '.join(self.presets) or '(none)'}")
        ns, rest = self.parser(preset).parse_known_args(args)
        stray = [t for t in rest if not t.startswith("-")]
        if stray and not any(t.startswith("-") for t in rest):
            raise ConfigError(f"cannot read {stray[0]!r}: use --key-name VALUE or key_name=VALUE")
        if rest:
            raise self._unknown(rest)
        given = vars(ns)
        config = {k: v for k, v in given.items() if not self.options[k].extra}
        return preset or self.default_preset, config, {k: v for k, v in given.items() if self.options[k].extra}

    def build(self, preset: str | None, given: Mapping[str, Any]) -> Any:
        values, _ = self.defaults(preset)
        values.update(given)
        if preset is not None and "preset" in {f.name for f in dataclasses.fields(self.config)}:
            values["preset"] = preset
        return self.config(**values)  # __post_init__ checks ranges and choices

    def parse_all(self, argv: Sequence[str] | None = None, **overrides: Any) -> tuple[Any, Any]:
        """(config, run options) of a command line; keyword ``overrides`` win over the command line."""
        preset, given, extra = self.parse_given(argv)
        preset = str(overrides.pop("preset")) if "preset" in overrides else preset
        if preset is not None and self.presets and preset not in self.presets:
            raise ConfigError(f"unknown preset {preset!r}; expected one of {', '.join(self.presets)}")
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            raise self._unknown(unknown)
        for key, value in overrides.items():
            (extra if self.options[key].extra else given)[key] = value
        run = self.extra(**extra) if self.extra else None
        return self.build(preset, given), run

    def parse(self, argv: Sequence[str] | None = None, **overrides: Any) -> Any:
        return self.parse_all(argv, **overrides)[0]

    def flags(self) -> dict[str, Option]:
        """``{--flag: Option}`` of every key (tests compare the shared ones across entry points)."""
        return {f"--{kebab(k)}": o for k, o in self.options.items()}


def parse_pairs(config: type, pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``["num_samples=128", "warm_start=false"]`` -> typed values of the dataclass ``config``'s fields
    (for options such as ``--planner-option KEY=VALUE``); an unknown key or a bad value is an error."""
    hints, out = typing.get_type_hints(config), {}
    options = {f.name: _option(f, hints[f.name], {}, False) for f in dataclasses.fields(config) if f.init}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        if key not in options:
            raise ConfigError(f"{flag}: unknown key {key!r}; known: {', '.join(sorted(options))}")
        opt = options[key]
        try:
            out[key] = parse_bool(text, key) if opt.kind is bool else opt.convert(text.strip())
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{flag}: {key} {e}") from None
    return out


def run_cli(main: Callable[..., Any], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``: a user mistake prints one ``error: ...`` line and returns 2 (1 for a diverged
    run), ``--help`` returns 0, Ctrl-C returns 130; otherwise main's return value (None -> 0)."""
    try:
        out = main(argv)
    except SystemExit as e:  # argparse's --help (0)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # tworooms_env.signals.Interrupted carries 130 / 143
        print("interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    return out if isinstance(out, int) else 0


__all__ = ["ConfigCLI", "ConfigError", "Option", "run_cli", "parse_pairs", "parse_bool", "deprecated", "field_comments",
           "SHARED_KEYS", "DEPRECATED_KEYS", "AMP_CHOICES", "USER_ERRORS"]
