"""Per-sender overrides, declared in a versioned YAML file instead of code (issue 3).

Integration engineers adapt the converter to one sending facility by editing this file, never a mapper:
the zone its timestamps without an offset are in, URIs for its CWE-3 coding-system names, which CX-5
identifier type is its MRN, and which Z-segment fields become extensions. The file is checked in full
at load time (unknown keys, bad zone names, bad URIs are errors naming the place), so a typo stops the
normalizer at start instead of silently mapping every message the old way.

    version: 1
    default:                       # optional: for every sender no entry below matches
      timezone: UTC
    senders:
      - name: st-mary-lab          # a label for errors and `clinstream senders check`
        match: {application: LABSYS, facility: STMARY}   # MSH-3 and/or MSH-4 (first component)
        timezone: America/Chicago
        code_systems: {LOCALLAB: "http://st-mary.example/fhir/CodeSystem/lab"}
        mrn_identifier_type: PI
        z_segments:
          ZPI.2: {url: "http://st-mary.example/fhir/StructureDefinition/religion-detail", target: Patient, type: string}

A sender's settings override the default's; its `code_systems` and `z_segments` are added to the
default's key by key (the sender's entry wins on the same key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from fhir_mappers.yaml_files import read_yaml

# an absolute URI: FHIR Coding.system and Extension.url must be one, and a bare "LOCALLAB" is the mistake to catch
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
# ZPI.2 (field 2) or ZPI.2.1 (its first component); only Z-segments, which no mapper reads
_Z_KEY = re.compile(r"^(Z[A-Z0-9]{2})\.([1-9][0-9]*)(?:\.([1-9][0-9]*))?$")
_CX5 = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


class _Strict(BaseModel):
    # extra="forbid": an unknown key is almost always a misspelt one, and must not be ignored quietly
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZField(_Strict):
    """Where one Z-segment field goes: an extension with this url on the message's target resource."""

    url: str
    target: Literal["Patient", "Encounter", "MessageHeader"]  # the message's patient, its encounter, its header
    type: Literal["string", "code", "dateTime"] = "string"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URI.match(value):
            raise ValueError(f"extension url {value!r} is not an absolute URI")
        return value


class SenderProfile(_Strict):
    timezone: str | None = None
    code_systems: dict[str, str] = Field(default_factory=dict)
    mrn_identifier_type: str | None = None
    z_segments: dict[str, ZField] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. America/Chicago)") from None
        return value

    @field_validator("code_systems")
    @classmethod
    def _systems(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, uri in value.items():
            if not name.strip():
                raise ValueError("a coding-system name is empty")
            if not _URI.match(uri):
                raise ValueError(f"system for {name!r}: {uri!r} is not an absolute URI")
            # system_uri() looks names up upper-cased (senders write "Ln", "LN", "ln")
            out[name.strip().upper()] = uri
        return out

    @field_validator("mrn_identifier_type")
    @classmethod
    def _cx5(cls, value: str | None) -> str | None:
        if value is not None and not _CX5.match(value):
            raise ValueError(f"{value!r} is not an identifier type code (CX-5, e.g. MR, PI, PT)")
        return value

    @field_validator("z_segments")
    @classmethod
    def _z_keys(cls, value: dict[str, ZField]) -> dict[str, ZField]:
        for key in value:
            if not _Z_KEY.match(key):
                raise ValueError(f"{key!r} is not a Z-segment field (ZXX.n or ZXX.n.m, e.g. ZPI.2)")
        return value

    def merged_over(self, base: SenderProfile | None) -> SenderProfile:
        if base is None:
            return self
        return SenderProfile(
            timezone=self.timezone or base.timezone,
            code_systems={**base.code_systems, **self.code_systems},
            mrn_identifier_type=self.mrn_identifier_type or base.mrn_identifier_type,
            z_segments={**base.z_segments, **self.z_segments},
        )


class Match(_Strict):
    """Compared with the first component of MSH-3 and MSH-4, exactly (HL7 namespace ids are case-sensitive)."""

    application: str | None = None
    facility: str | None = None

    @model_validator(mode="after")
    def _some(self) -> Match:
        if not self.application and not self.facility:
            raise ValueError("match needs application (MSH-3) and/or facility (MSH-4)")
        return self


class Sender(SenderProfile):
    name: str = Field(min_length=1)
    match: Match


@dataclass(frozen=True)
class ZTarget:
    segment: str
    field: int
    component: int | None
    spec: ZField


@dataclass(frozen=True)
class Profile:
    """One sender's overrides resolved for the mapper: default merged in, zone loaded, Z keys parsed."""

    name: str
    zone: ZoneInfo | None
    code_systems: dict[str, str]
    mrn_identifier_type: str | None
    z_fields: dict[str, tuple[ZTarget, ...]]  # by segment id, in file order

    @classmethod
    def of(cls, name: str, profile: SenderProfile) -> Profile:
        by_segment: dict[str, list[ZTarget]] = {}
        for key, spec in profile.z_segments.items():
            seg, n, comp = _Z_KEY.match(key).groups()  # type: ignore[union-attr]  # checked at load
            by_segment.setdefault(seg, []).append(ZTarget(seg, int(n), int(comp) if comp else None, spec))
        return cls(name=name, zone=ZoneInfo(profile.timezone) if profile.timezone else None,
                   code_systems=dict(profile.code_systems), mrn_identifier_type=profile.mrn_identifier_type,
                   z_fields={k: tuple(v) for k, v in by_segment.items()})


class SenderOverrides(_Strict):
    version: Literal[1]
    default: SenderProfile | None = None
    senders: list[Sender] = Field(default_factory=list)
    # profiles resolved once per sender (index; None for the default): select() runs for every message
    _resolved: dict[int | None, Profile] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> SenderOverrides:
        seen: dict[tuple[str | None, str | None], str] = {}
        names: set[str] = set()
        for s in self.senders:
            key = (s.match.application, s.match.facility)
            if key in seen:  # the second would never be used
                raise ValueError(f"senders {seen[key]!r} and {s.name!r} have the same match")
            if s.name in names:
                raise ValueError(f"two senders are named {s.name!r}")
            seen[key] = s.name
            names.add(s.name)
        return self

    def select(self, application: str, facility: str) -> Profile | None:
        """The profile for a message from MSH-3/MSH-4: a sender matching both beats one matching one of
        them; among equals the first in the file wins; else the default; None when neither applies."""
        best, best_score = None, 0
        for i, s in enumerate(self.senders):
            m = s.match
            if (m.application and m.application != application) or (m.facility and m.facility != facility):
                continue
            score = bool(m.application) + bool(m.facility)
            if score > best_score:
                best, best_score = i, score
        if best is None and self.default is None:
            return None
        if best not in self._resolved:
            if best is None:
                self._resolved[None] = Profile.of("default", self.default or SenderProfile())
            else:
                sender = self.senders[best]
                own = SenderProfile(**{k: getattr(sender, k) for k in SenderProfile.model_fields})
                self._resolved[best] = Profile.of(sender.name, own.merged_over(self.default))
        return self._resolved[best]


class SenderOverridesError(ValueError):
    """The overrides file cannot be used; the message names the file and the offending keys."""


def _reason(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (see docker/senders.example.yaml for the format)"
    if error["type"] == "string_type" and isinstance(error.get("input"), (int, float, bool)):
        # YAML reads 1234 as a number, 0012 as octal and NO as false: such names must be quoted
        return f"{error['msg']}: got {error['input']!r}, quote it in the YAML"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_overrides(data: Any, source: str = "sender overrides") -> SenderOverrides:
    try:
        return SenderOverrides.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {_reason(e)}" for e in exc.errors())
        raise SenderOverridesError(f"{source}: {problems}") from None


def load_overrides(path: str | Path) -> SenderOverrides:
    """Read and check a sender overrides YAML file; SenderOverridesError says what is wrong and where."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except OSError as exc:
        raise SenderOverridesError(f"{path}: cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SenderOverridesError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SenderOverridesError(f"{path}: expected a mapping with 'version: 1' and 'senders'")
    return parse_overrides(data, str(path))
