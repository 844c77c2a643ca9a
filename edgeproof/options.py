"""Options of registry rows (export formats, runtimes): one declaration, one parser.

A format or a runtime declares ``OPTIONS = {key: Option(default, help, kind, choices)}``;
``resolve_options`` overlays what the user gave (``--option`` / ``--runtime-option``
``KEY=VALUE`` text, or Python values) on the defaults, parses each into its kind, and
refuses an unknown key or a value outside the choices with a message listing the valid
ones.

Example:
    >>> opts = {"io_type": Option("int8", "input/output type", str, ("int8", "uint8")),
    ...         "epochs": Option(2, "fine-tuning epochs", int)}
    >>> resolve_options({"epochs": "3"}, opts, "tflite-qat-int8", "Format")
    {'io_type': 'int8', 'epochs': 3}
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeproof.errors import UsageError
from edgeproof.validation import check_choice, check_float, check_int

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Option:
    """One option a format or runtime accepts.

    Args:
        default: the value used when the option is not given (None: unset).
        help: one line for ``edgeproof formats`` / ``edgeproof runtimes``.
        kind: ``bool``, ``int``, ``float``, ``str`` or ``list`` (comma-separated names);
            command-line text is parsed into it.
        choices: allowed values of a ``str`` option.
        low: the smallest value of an ``int`` (inclusive, default 1) or ``float`` option
            (exclusive, default 0).
    """

    default: object
    help: str = ""
    kind: type = str
    choices: tuple[str, ...] | None = None
    low: float | None = None

    def parse(self, key: str, value, owner: str):
        """``value`` (text from the command line, or a Python value) as this option's kind.

        Example:
            >>> Option(True, "use XNNPACK", bool).parse("xnnpack", "false", "litert")
            False
            >>> Option("", "names", list).parse("float_layers", "a, b", "tflite-int8")
            ['a', 'b']
        """
        if value is None:
            return None
        if self.kind is bool and not isinstance(value, bool):
            text = str(value).strip().lower()
            if text not in _TRUE + _FALSE:
                raise UsageError(f"Option '{key}' of {owner} must be true or false; got {value!r}.")
            return text in _TRUE
        if self.kind is int:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise UsageError(f"Option '{key}' of {owner} must be an int; got {value!r}.") from None
            return check_int(key, value, owner, low=1 if self.low is None else int(self.low))
        if self.kind is float:
            return check_float(key, value, owner, low=self.low or 0.0, low_open=True)
        if self.kind is list:
            return split_names(value)
        if self.choices is not None:
            return check_choice(f"value of option '{key}'", str(value), self.choices, owner)
        return value

    def describe(self, key: str) -> str:
        """``key=default (choices): help`` for the registry tables."""
        shown = ",".join(self.default) if isinstance(self.default, (list, tuple)) else self.default
        choices = f" ({'|'.join(self.choices)})" if self.choices else ""
        return f"{key}={shown}{choices}" + (f": {self.help}" if self.help else "")


def split_names(value) -> list[str]:
    """Names from a list, or from comma-separated text (blanks dropped).

    Example:
        >>> split_names("conv1, conv2,")
        ['conv1', 'conv2']
    """
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


def resolve_options(given: dict | None, options: dict[str, Option], owner: str,
                    kind: str) -> dict:
    """Defaults overlaid with ``given``, each parsed; unknown keys list the valid ones.

    Args:
        given: the user's ``{key: value}``.
        options: the declaration (``OPTIONS`` of a format or runtime).
        owner: the format's or runtime's name, for messages.
        kind: ``Format`` or ``Runtime``, for messages.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(options))
    if unknown:
        valid = ", ".join(sorted(options)) or "none"
        raise UsageError(f"{kind} {owner} does not take option(s) {', '.join(unknown)}. "
                         f"Valid options: {valid}.")
    return {k: opt.parse(k, given[k], owner) if k in given else opt.default
            for k, opt in options.items()}
