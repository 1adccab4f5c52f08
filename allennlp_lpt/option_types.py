"""
The types of a component's options, checked before AllenNLP builds it from a config.

AllenNLP's `from_params` turns `"prompt_layer": "3"` into a bare `TypeError: Expected
prompt_layer to be a int.` that names neither the whole config key nor the fix, and it quietly
turns `true` into `1` for an integer option. A component that takes `TypedOptions` as its first
base is checked first instead: an option whose annotation is `int`, `float`, `bool` or `str`
(or an `Optional`, `List` or `Dict` of one) and whose value in the config is of another kind is
a ConfigurationError naming the full key (AllenNLP's `Params.history`), the value and the fix.
Everything else (unknown keys, nested components) is left to AllenNLP, which already names it.
"""
import collections.abc
import inspect
import json
import typing
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, TypeVar, Union

from allennlp.common import Params, Registrable
from allennlp.common.checks import ConfigurationError

T = TypeVar("T", bound="TypedOptions")

_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_LISTS = (list, tuple, collections.abc.Sequence)
_DICTS = (dict, collections.abc.Mapping)


def _what(value: Any) -> str:
    """How a user would call what the config gave."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "an object"


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:  # a boolean is no integer, though Python's bool is an int
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _meant(value: Any, kind: type) -> Optional[Any]:
    """The value of `kind` a wrongly written one most likely meant (`"3"` for an integer: 3;
    `0` for a string: "0"), or None."""
    if kind is str:
        return json.dumps(value) if isinstance(value, (int, float, bool)) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if kind is bool:
        return text.lower() == "true" if text.lower() in ("true", "false") else None
    try:
        return int(text) if kind is int else float(text) if kind is float else None
    except ValueError:
        return None


def option_problem(value: Any, annotation: Any, key: str, name: Optional[str]) -> Optional[str]:
    """What is wrong with `value` for an option annotated `annotation`, or None. `name` is the
    option's name, None for an item of a list or a mapping."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _KINDS:
        if _fits(value, annotation):
            return None
        meant = _meant(value, annotation)
        fix = f"give {_KINDS[annotation]}"
        if meant is not None:
            written = json.dumps(meant) if name is None else f'"{name}": {json.dumps(meant)}'
            fix += f", e.g. {written} ({'in' if annotation is str else 'without'} quotes)"
        return f"{key}={json.dumps(value, default=str)} is {_what(value)}: {fix}."
    if origin is Union and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return None if value is None else option_problem(value, inner, key, name)
    if origin in _LISTS and args and args[0] in _KINDS:
        if not isinstance(value, (list, tuple)):
            return f"{key}={json.dumps(value, default=str)} is {_what(value)}: give a list."
        for index, item in enumerate(value):
            problem = option_problem(item, args[0], f"{key}[{index}]", None)
            if problem is not None:
                return problem
        return None
    if origin in _DICTS and len(args) == 2 and args[1] in _KINDS and isinstance(value, dict):
        for item_key, item in value.items():
            problem = option_problem(item, args[1], f"{key}.{item_key}", None)
            if problem is not None:
                return problem
    return None


def _annotations(cls: type, constructor: Optional[Callable[..., Any]]) -> Iterator[Tuple[str, Any]]:
    """(name, annotation) of every option `cls` takes from a config: its constructor's, and
    where that passes `**kwargs` on, its bases' (as AllenNLP's `create_kwargs` follows them)."""
    constructors: List[Callable[..., Any]] = [constructor] if constructor is not None else []
    constructors += [base.__dict__["__init__"] for base in cls.__mro__ if "__init__" in base.__dict__]
    seen = set()
    for init in constructors:
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001  (an annotation that does not resolve: AllenNLP's affair)
            hints = {}
        parameters = inspect.signature(init).parameters.values()
        for parameter in parameters:
            if parameter.name in seen or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            seen.add(parameter.name)
            yield parameter.name, hints.get(parameter.name, parameter.annotation)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return


def check_option_types(cls: type, params: Params, constructor: Optional[Callable[..., Any]] = None) -> None:
    """
    Raises a ConfigurationError for the first option in `params` whose value is not of the kind
    `cls`'s constructor annotates it with.

    # Parameters

    cls : `type`
        The class about to be built.
    params : `Params`
        Its config (`params.history` is the key path that leads to it).
    constructor : `Callable`, optional
        The constructor AllenNLP will call, where it is not `cls.__init__`.
    """
    given: Dict[str, Any] = params.params
    for name, annotation in _annotations(cls, constructor):
        if name in given:
            problem = option_problem(given[name], annotation, f"{params.history}{name}", name)
            if problem is not None:
                raise ConfigurationError(problem)


class TypedOptions:
    """
    A first base for this package's components: their config's options are checked against
    their constructors' annotations before AllenNLP builds them (see the module docstring).
    """

    @classmethod
    def from_params(  # type: ignore[no-untyped-def]
        cls: Type[T],
        params: Params,
        constructor_to_call: Optional[Callable[..., T]] = None,
        constructor_to_inspect: Optional[Callable[..., T]] = None,
        **extras,
    ) -> T:
        # A registered base dispatches to its subclass's `from_params`, which comes back here
        # with the class that is built: check that one.
        dispatches = Registrable._registry.get(cls) is not None and constructor_to_call is None  # type: ignore[attr-defined]
        if isinstance(params, Params) and not dispatches:
            check_option_types(cls, params, constructor_to_inspect)
        return super().from_params(  # type: ignore[misc]
            params,
            constructor_to_call=constructor_to_call,
            constructor_to_inspect=constructor_to_inspect,
            **extras,
        )
