"""The ``/metrics`` exposition of one registry: no ``_created`` series, line prefixes cached per series.

Two things make a scrape of the bot cheap without exporting less of what matters:

No ``_created`` series
    prometheus_client gives every counter, histogram and summary child a ``<name>_created`` twin
    (its creation time), which doubles the series of every counter. Nothing of ours reads them
    (dashboards and rules use ``rate``/``increase``), so this module leaves them out, **in our
    collection path only**: prometheus_client's process-wide ``PROMETHEUS_DISABLE_CREATED_SERIES``
    switch would also change the host bot's own metrics, which other registries (and
    prometheus_client's ``REGISTRY``) keep exposing as before. In OpenMetrics, ``_created`` is the
    same sample, so it goes too.
Cached line prefixes, values read at scrape time
    prometheus_client's encoders rebuild every line from scratch: a ``Sample`` per series, its label
    dict merged, sorted and escaped (per character, in OpenMetrics), then formatted. For the
    ``Counter``, ``Gauge`` and ``Histogram`` objects of the registry this module keeps each series'
    ``name{labels} `` prefix (one per child and format, built once, with prometheus_client's own
    ordering and escaping) and at every scrape only reads the values (and the exemplars, in
    OpenMetrics) and joins. The exposition itself is never cached. The families of other
    collectors (process, GC, cache sizes, custom ones) are collected at every scrape, ``_created``
    taken out, and written directly when their names are plain (:func:`render_family`), else by
    prometheus_client's encoder. The output is byte-identical to prometheus_client's minus the
    ``_created`` lines (``tests/instrumentation/test_instr_scrape.py``); ``bench/bench_scrape.py``
    measures the gain.

Anything the fast path is not sure to render exactly as prometheus_client would — a metric or
label name outside the legacy character set, an escaping scheme other than ``underscores`` /
``allow-utf-8``, OpenMetrics 2.0, a subclassed metric, a registry with ``target_info``, a
``?name[]=`` filter — is rendered by prometheus_client's encoder (still without ``_created``).
"""

from __future__ import annotations

import copy
import functools
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import exposition as text_exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_float_to_go_string
from prometheus_client.values import MutexValue

__all__ = ["Exposition", "Format", "WithoutCreated", "choose_format", "render_family"]

Encoder = Callable[[Collector], bytes]
#: A sample's name suffix and its labels beyond the child's (``le`` for a bucket).
Suffixes = Sequence[tuple[str, tuple[tuple[str, str], ...]]]

TEXT = "text"
OPENMETRICS = "openmetrics"
_FAST_ESCAPINGS = frozenset({om_exposition.UNDERSCORES, om_exposition.ALLOWUTF8})
# Names every escaping scheme prometheus_client has leaves as they are (no ':' either: its
# OpenMetrics encoder escapes sample names with the label-name rune set).
_PLAIN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_EOF = "# EOF\n"
#: prometheus_client's number formatting (``+Inf``, Go-style exponents), as both its encoders use it.
floatToGoString = cast(Callable[[float], str], _untyped_float_to_go_string)


def _go_string(value: float) -> str:
    """``floatToGoString(value)``, for most values without its checks: a float in [0, 1e6) has no
    Go-style exponent (that starts at 1e6), is finite, and prints as ``repr`` prints it."""
    if type(value) is float and 0.0 <= value < 1e6:
        return repr(value)
    return floatToGoString(value)


def _read(value: Any) -> tuple[float, Any]:
    """A counter's or bucket's value and exemplar. prometheus_client's ``MutexValue`` takes its lock
    for each read; one attribute read is atomic anyway, and its ``get()`` gives no more (each
    bucket is read on its own either way). Other value classes (multiprocess) are asked."""
    if type(value) is MutexValue:
        return value._value, value._exemplar
    return value.get(), value.get_exemplar()


@dataclass(frozen=True)
class Format:
    """What one scrape asked for: prometheus_client's encoder for it, its content type, and
    ``kind`` (``text`` / ``openmetrics``) when the cached-prefix renderer produces the same bytes."""

    encoder: Encoder
    content_type: str
    kind: str | None


def choose_format(accept_header: str) -> Format:
    """Content negotiation exactly as prometheus_client's ``choose_encoder`` does it."""
    encoder, content_type = text_exposition.choose_encoder(accept_header)
    func = encoder.func if isinstance(encoder, functools.partial) else encoder
    keywords = encoder.keywords if isinstance(encoder, functools.partial) else {}
    escaping = keywords.get("escaping", om_exposition.UNDERSCORES)
    kind: str | None = None
    if escaping in _FAST_ESCAPINGS:
        if func is text_exposition.generate_latest:
            kind = TEXT
        elif func is om_exposition.generate_latest and keywords.get("version", "1.0.0").startswith("1."):
            kind = OPENMETRICS
    return Format(encoder, content_type, kind)


# -- without _created -------------------------------------------------------------------------------


def _without_created(family: Metric) -> Metric:
    created = family.name + "_created"
    if not any(sample.name == created for sample in family.samples):
        return family
    stripped = copy.copy(family)
    stripped.samples = [sample for sample in family.samples if sample.name != created]
    return stripped


class WithoutCreated(Collector):
    """``source``'s metric families without their ``<name>_created`` samples."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        for family in self._source.collect():
            yield _without_created(family)


# -- the cached-prefix renderer ---------------------------------------------------------------------


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _label_string(pairs: Iterable[tuple[str, str]]) -> str:
    # prometheus_client sorts a sample's labels by name (``le`` included) in both formats.
    items = sorted(pairs)
    if not items:
        return ""
    return "{" + ",".join(f'{name}="{_escape_value(value)}"' for name, value in items) + "}"


def _exemplar_string(exemplar: Any) -> str:
    labels = _label_string(exemplar.labels.items())
    if exemplar.timestamp is not None:
        return f" # {labels} {floatToGoString(exemplar.value)} {exemplar.timestamp}"
    return f" # {labels} {floatToGoString(exemplar.value)}"


def _header(name: str, doc: str, family_type: str, unit: str, kind: str) -> str:
    """A family's HELP and TYPE lines (and UNIT, in OpenMetrics) as prometheus_client writes them:
    the text format escapes backslashes and newlines in HELP, OpenMetrics quotes too."""
    if kind == TEXT:
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {name} {doc}\n# TYPE {name} {family_type}\n"
    header = f"# HELP {name} {_escape_value(doc)}\n# TYPE {name} {family_type}\n"
    return header + f"# UNIT {name} {unit}\n" if unit else header


def _gauge_value(child: Gauge) -> float:
    if "_child_samples" in vars(child):  # set_function() replaced the value by a callable
        return float(next(iter(child._child_samples())).value)
    return float(child._value.get())


class _Family:
    """One Counter / Gauge / Histogram in one format: its header and each child's line prefixes.

    Holds no reference to the metric (the cache is keyed by it, weakly): ``render(metric, out)``."""

    __slots__ = ("header", "kind", "prefixes", "render")

    def __init__(self, metric: Counter | Gauge | Histogram, kind: str) -> None:
        self.kind = kind
        self.prefixes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.render: Callable[[Any, list[str]], None]
        name, doc = metric._name, metric._documentation
        if isinstance(metric, Counter):
            self.render = self._counter
            family_type, header_name = "counter", (f"{name}_total" if kind == TEXT else name)
        elif isinstance(metric, Histogram):
            self.render = self._histogram
            family_type, header_name = "histogram", name
        else:
            self.render = self._gauge
            family_type, header_name = "gauge", name
        self.header = _header(header_name, doc, family_type, metric._unit, kind)

    @staticmethod
    def children(metric: Any) -> list[tuple[tuple[str, ...], Any]]:
        if not metric._labelnames:
            return [((), metric)]
        with metric._lock:
            return list(metric._metrics.items())

    def _prefixes(self, metric: Any, values: tuple[str, ...], suffixes: Suffixes) -> tuple[str, ...]:
        prefixes = self.prefixes.get(values)
        if prefixes is None:
            base = tuple(zip(metric._labelnames, values, strict=True))
            name = metric._name
            prefixes = tuple(f"{name}{suffix}{_label_string(base + extra)} " for suffix, extra in suffixes)
            self.prefixes[values] = prefixes
        return prefixes

    def _counter(self, metric: Counter, out: list[str]) -> None:
        out.append(self.header)
        openmetrics = self.kind == OPENMETRICS
        for values, child in self.children(metric):
            (prefix,) = self._prefixes(metric, values, (("_total", ()),))
            value, exemplar = _read(child._value)
            if openmetrics and exemplar is not None:
                out.append(f"{prefix}{_go_string(value)}{_exemplar_string(exemplar)}\n")
            else:
                out.append(f"{prefix}{_go_string(value)}\n")

    def _gauge(self, metric: Gauge, out: list[str]) -> None:
        out.append(self.header)
        for values, child in self.children(metric):
            (prefix,) = self._prefixes(metric, values, (("", ()),))
            out.append(f"{prefix}{floatToGoString(_gauge_value(child))}\n")

    def _histogram(self, metric: Histogram, out: list[str]) -> None:
        out.append(self.header)
        openmetrics = self.kind == OPENMETRICS
        suffixes: list[tuple[str, tuple[tuple[str, str], ...]]] | None = None
        for values, child in self.children(metric):
            prefixes = self.prefixes.get(values)
            if prefixes is None:
                if suffixes is None:
                    bounds = child._upper_bounds
                    suffixes = [("_bucket", (("le", floatToGoString(bound)),)) for bound in bounds]
                    suffixes.append(("_count", ()))
                    if bounds[0] >= 0:
                        suffixes.append(("_sum", ()))
                prefixes = self._prefixes(metric, values, suffixes)
            buckets = child._buckets
            acc = 0.0
            # prefixes: one per bucket, then the count's and the sum's (longer than buckets)
            for prefix, bucket in zip(prefixes, buckets, strict=False):
                count, exemplar = _read(bucket)
                acc += count
                if openmetrics and exemplar is not None:
                    out.append(f"{prefix}{_go_string(acc)}{_exemplar_string(exemplar)}\n")
                else:
                    out.append(f"{prefix}{_go_string(acc)}\n")
            n = len(buckets)
            out.append(f"{prefixes[n]}{_go_string(acc)}\n")
            if len(prefixes) > n + 1:
                out.append(f"{prefixes[n + 1]}{_go_string(_read(child._sum)[0])}\n")


_FAST_TYPES = (Counter, Gauge, Histogram)


def _fast_renderable(collector: Collector) -> bool:
    if type(collector) not in _FAST_TYPES:
        return False
    names = (collector._name, *collector._labelnames)  # type: ignore[attr-defined]
    return all(_PLAIN_NAME.match(name) for name in names)


class _Collected(Collector):
    """One family already collected, for prometheus_client's encoder."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return [self._family]


#: The families of other collectors the direct renderer takes: the types whose lines both formats
#: write the same way (prometheus_client renames ``info``/``stateset``/``unknown`` in text, and
#: moves a gauge histogram's ``_gsum``/``_gcount`` to families of their own: those go through it).
_DIRECT_TYPES = frozenset({"counter", "gauge", "histogram", "summary"})


def render_family(family: Metric, kind: str, out: list[str]) -> bool:
    """Append ``family`` (of a collector other than our metric objects: process, GC, cache sizes)
    in the format ``kind``, byte-identical to prometheus_client's encoder, and return True; or
    return False, appending nothing, when it is not sure to be (then the encoder renders it).

    prometheus_client's OpenMetrics encoder escapes every name character by character, which made
    these few families most of a scrape's time; with plain names that escaping leaves them as
    they are, so they are written directly."""
    name = family.name
    if family.type not in _DIRECT_TYPES or not _PLAIN_NAME.match(name):
        return False
    lines: list[str] = []
    for sample in family.samples:
        if (
            sample.timestamp is not None
            or sample.exemplar is not None
            or sample.native_histogram is not None
            or sample.value is None
            or not _PLAIN_NAME.match(sample.name)
            or not all(_PLAIN_NAME.match(label) for label in sample.labels)
        ):
            return False
        lines.append(f"{sample.name}{_label_string(sample.labels.items())} {_go_string(sample.value)}\n")
    header_name = f"{name}_total" if kind == TEXT and family.type == "counter" else name
    out.append(_header(header_name, family.documentation, family.type, family.unit, kind))
    out.extend(lines)
    return True


class Exposition:
    """Renders ``registry`` (its collectors in registration order, like ``registry.collect()``)."""

    def __init__(self, registry: Collector) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        #: collector -> {kind: _Family}, or None when prometheus_client renders it.
        self._families: weakref.WeakKeyDictionary[Collector, dict[str, _Family] | None] = (
            weakref.WeakKeyDictionary()
        )

    def render(self, fmt: Format, names: Sequence[str] = ()) -> bytes:
        """The exposition in ``fmt``, without ``_created``; only the ``names`` families if given."""
        registry = self.registry
        kind = fmt.kind
        collectors = None if names or kind is None else self._collectors()
        if collectors is None or kind is None:
            source = registry.restricted_registry(names) if names else registry  # type: ignore[attr-defined]
            return fmt.encoder(WithoutCreated(source))
        out: list[str] = []
        with self._lock:  # the prefix caches are shared by every scrape of this exposition
            for collector in collectors:
                family = self._family(collector, kind)
                if family is not None:
                    family.render(collector, out)
                    continue
                for metric in WithoutCreated(collector).collect():
                    if not render_family(metric, kind, out):
                        text = fmt.encoder(_Collected(metric)).decode("utf-8")
                        out.append(text.removesuffix(_EOF) if kind == OPENMETRICS else text)
        if fmt.kind == OPENMETRICS:
            out.append(_EOF)
        return "".join(out).encode("utf-8")

    def _collectors(self) -> list[Collector] | None:
        registry = self.registry
        if type(registry) is not CollectorRegistry or getattr(registry, "_target_info", True):
            return None
        collectors = getattr(registry, "_collector_to_names", None)
        if not isinstance(collectors, dict):
            return None
        with registry._lock:
            return list(collectors)

    def _family(self, collector: Collector, kind: str) -> _Family | None:
        try:
            by_kind = self._families[collector]
        except KeyError:
            by_kind = self._families[collector] = {} if _fast_renderable(collector) else None
        except TypeError:  # not weak-referenceable
            return None
        if by_kind is None:
            return None
        family = by_kind.get(kind)
        if family is None:
            family = by_kind[kind] = _Family(collector, kind)  # type: ignore[arg-type]
        return family
