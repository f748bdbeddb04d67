"""$metadata against the OASIS CSDL XML schemas, and only real vocabulary terms."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import xmlschema

from payroster.odata.metadata import EDM, csdl_xml
from payroster.odata.model import SETS
from tests.odata.conftest import oasis_dir

SCHEMAS = oasis_dir()
# Terms of Org.OData.Capabilities.V1 we use, with the kind of value the vocabulary gives each.
CAPABILITY_TERMS = {
    "Capabilities.ConformanceLevel": "EnumMember",
    "Capabilities.BatchSupported": "Bool",
    "Capabilities.AsynchronousRequestsSupported": "Bool",
}


def test_metadata_validates_against_oasis_xsd() -> None:
    """edmx.xsd (importing edm.xsd) accepts the document."""
    schema = xmlschema.XMLSchema([str(SCHEMAS / "edmx.xsd"), str(SCHEMAS / "edm.xsd")])
    schema.validate(csdl_xml())


def test_every_set_key_and_navigation_is_declared() -> None:
    """Entity sets, keys and navigation bindings match the model."""
    root = ET.fromstring(csdl_xml())
    types = {t.get("Name"): t for t in root.iter(f"{{{EDM}}}EntityType")}
    sets = {s.get("Name"): s for s in root.iter(f"{{{EDM}}}EntitySet")}
    assert set(sets) == set(SETS)
    for name, es in SETS.items():
        entity = types[es.type_name]
        keys = [p.get("Name") for p in entity.iter(f"{{{EDM}}}PropertyRef")]
        assert keys == list(es.keys)
        bindings = {b.get("Path"): b.get("Target") for b in sets[name].iter(f"{{{EDM}}}NavigationPropertyBinding")}
        assert bindings == {n.name: n.target for n in es.navigations.values()}
    user = types["User"]
    tags = next(p for p in user.iter(f"{{{EDM}}}Property") if p.get("Name") == "tags")
    assert tags.get("Type") == "Collection(Edm.String)"


def test_annotations_are_real_terms() -> None:
    """Only known Capabilities terms, each with the value kind its vocabulary defines, and a declared alias."""
    root = ET.fromstring(csdl_xml())
    includes = {
        i.get("Alias"): i.get("Namespace") for i in root.iter("{http://docs.oasis-open.org/odata/ns/edmx}Include")
    }
    assert includes == {"Capabilities": "Org.OData.Capabilities.V1", "Temporal": "Org.OData.Temporal.V1"}
    container = next(root.iter(f"{{{EDM}}}EntityContainer"))
    annotations = [a for a in container.findall(f"{{{EDM}}}Annotation")]
    assert annotations
    for a in annotations:
        term = a.get("Term")
        assert term in CAPABILITY_TERMS, term
        kind = CAPABILITY_TERMS[term]
        assert a.get(kind) is not None
    level = next(a for a in annotations if a.get("Term") == "Capabilities.ConformanceLevel")
    assert level.get("EnumMember") == "Capabilities.ConformanceLevelType/Intermediate"


def test_sets_with_application_time_are_annotated() -> None:
    """Temporal.ApplicationTimeSupport (Temporal Data 4.0, §3) on every set with application time, dates as the
    unit: a snapshot timeline on Users, Teams and TeamMembers, a visible one naming the period's start, end and
    object key on the period sets; none on the others."""
    root = ET.fromstring(csdl_xml())
    expected = {
        "Users": None,
        "Teams": None,
        "TeamMembers": None,
        "MembershipPeriods": ["teamId", "systemUserId"],
        "ManagerPeriods": ["systemUserId"],
        "TeamPeriods": ["teamId"],
    }
    found = {}
    for entity_set in root.iter(f"{{{EDM}}}EntitySet"):
        for a in entity_set.findall(f"{{{EDM}}}Annotation"):
            if a.get("Term") == "Capabilities.ChangeTracking":  # tests/odata/test_delta.py
                continue
            assert a.get("Term") == "Temporal.ApplicationTimeSupport"
            record = a.find(f"{{{EDM}}}Record")
            assert record is not None
            values = {v.get("Property"): v for v in record.findall(f"{{{EDM}}}PropertyValue")}
            assert set(values) == {"UnitOfTime", "Timeline"}
            unit = values["UnitOfTime"].find(f"{{{EDM}}}Record")
            assert unit is not None and unit.get("Type") == "Temporal.UnitOfTimeDate"
            timeline = values["Timeline"].find(f"{{{EDM}}}Record")
            assert timeline is not None
            if timeline.get("Type") == "Temporal.TimelineSnapshot":
                assert len(timeline) == 0
                found[entity_set.get("Name")] = None
                continue
            assert timeline.get("Type") == "Temporal.TimelineVisible"
            inner = {v.get("Property"): v for v in timeline.findall(f"{{{EDM}}}PropertyValue")}
            assert (inner["PeriodStart"].get("PropertyPath"), inner["PeriodEnd"].get("PropertyPath")) == (
                "validFrom",
                "validTo",
            )
            found[entity_set.get("Name")] = [p.text for p in inner["ObjectKey"].iter(f"{{{EDM}}}PropertyPath")]
    assert found == expected
    types = {t.get("Name"): t for t in root.iter(f"{{{EDM}}}EntityType")}
    period = {p.get("Name"): p for p in types["MembershipPeriod"].iter(f"{{{EDM}}}Property")}
    assert (period["validFrom"].get("Type"), period["validFrom"].get("Nullable")) == ("Edm.Date", "false")
    assert (period["validTo"].get("Type"), period["validTo"].get("Nullable")) == ("Edm.Date", None)
