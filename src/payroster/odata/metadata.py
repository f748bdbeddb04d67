"""``$metadata`` as CSDL XML, generated from the model; valid against the OASIS edmx.xsd and edm.xsd.

Entity sets with application time carry ``Temporal.ApplicationTimeSupport``, the term of the Temporal vocabulary
(OData Extension for Temporal Data 4.0, §3): a ``TimelineSnapshot`` for the sets answered as of one day, a
``TimelineVisible`` naming the period's start, end and object key for the sets of periods (odata/temporal.py)."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

from payroster.odata.delta import TRACKED
from payroster.odata.model import CONTAINER, NAMESPACE, SETS, TIMELINE, EntitySet

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
CAPABILITIES = "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml"
TEMPORAL = "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Temporal.V1.xml"


@functools.cache
def csdl_xml() -> bytes:
    """The service's CSDL XML document."""
    ET.register_namespace("edmx", EDMX)
    ET.register_namespace("", EDM)
    root = ET.Element(f"{{{EDMX}}}Edmx", Version="4.0")
    ref = ET.SubElement(root, f"{{{EDMX}}}Reference", Uri=CAPABILITIES)
    ET.SubElement(ref, f"{{{EDMX}}}Include", Namespace="Org.OData.Capabilities.V1", Alias="Capabilities")
    ref = ET.SubElement(root, f"{{{EDMX}}}Reference", Uri=TEMPORAL)
    ET.SubElement(ref, f"{{{EDMX}}}Include", Namespace="Org.OData.Temporal.V1", Alias="Temporal")
    services = ET.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = ET.SubElement(services, f"{{{EDM}}}Schema", Namespace=NAMESPACE)
    for es in SETS.values():
        entity = ET.SubElement(schema, f"{{{EDM}}}EntityType", Name=es.type_name)
        key = ET.SubElement(entity, f"{{{EDM}}}Key")
        for name in es.keys:
            ET.SubElement(key, f"{{{EDM}}}PropertyRef", Name=name)
        for prop in es.properties.values():
            attrs = {"Name": prop.name, "Type": f"Collection({prop.edm})" if prop.is_collection else prop.edm}
            if not prop.nullable:
                attrs["Nullable"] = "false"
            if prop.edm == "Edm.DateTimeOffset":
                attrs["Precision"] = "6"
            if prop.edm == "Edm.Decimal":
                attrs["Scale"] = "variable"
            ET.SubElement(entity, f"{{{EDM}}}Property", attrs)
        for nav in es.navigations.values():
            target = f"{NAMESPACE}.{SETS[nav.target].type_name}"
            attrs = {"Name": nav.name, "Type": f"Collection({target})" if nav.many else target}
            if not nav.many and nav.name in ("team", "user"):
                attrs["Nullable"] = "false"
            ET.SubElement(entity, f"{{{EDM}}}NavigationProperty", attrs)
    container = ET.SubElement(schema, f"{{{EDM}}}EntityContainer", Name=CONTAINER)
    for es in SETS.values():
        entity_set = ET.SubElement(container, f"{{{EDM}}}EntitySet", Name=es.name, EntityType=es.qualified_type)
        for nav in es.navigations.values():
            ET.SubElement(entity_set, f"{{{EDM}}}NavigationPropertyBinding", Path=nav.name, Target=nav.target)
        if es.time is not None:
            _application_time(entity_set, es)
        if es.name in TRACKED:
            _change_tracking(entity_set, es)
    ET.SubElement(
        container,
        f"{{{EDM}}}Annotation",
        Term="Capabilities.ConformanceLevel",
        EnumMember="Capabilities.ConformanceLevelType/Intermediate",
    )
    ET.SubElement(container, f"{{{EDM}}}Annotation", Term="Capabilities.BatchSupported", Bool="false")
    ET.SubElement(container, f"{{{EDM}}}Annotation", Term="Capabilities.AsynchronousRequestsSupported", Bool="false")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _change_tracking(entity_set: ET.Element, es: EntitySet) -> None:
    """The set's ``Capabilities.ChangeTracking``: delta links follow every property and navigation (odata/delta.py)."""
    annotation = ET.SubElement(entity_set, f"{{{EDM}}}Annotation", Term="Capabilities.ChangeTracking")
    record = ET.SubElement(annotation, f"{{{EDM}}}Record")
    ET.SubElement(record, f"{{{EDM}}}PropertyValue", Property="Supported", Bool="true")
    filterable = ET.SubElement(record, f"{{{EDM}}}PropertyValue", Property="FilterableProperties")
    paths = ET.SubElement(filterable, f"{{{EDM}}}Collection")
    for name in es.properties:
        ET.SubElement(paths, f"{{{EDM}}}PropertyPath").text = name
    expandable = ET.SubElement(record, f"{{{EDM}}}PropertyValue", Property="ExpandableProperties")
    navs = ET.SubElement(expandable, f"{{{EDM}}}Collection")
    for name in es.navigations:
        ET.SubElement(navs, f"{{{EDM}}}NavigationPropertyPath").text = name


def _application_time(entity_set: ET.Element, es: EntitySet) -> None:
    """The set's ``Temporal.ApplicationTimeSupport``: dates, and its kind of timeline."""
    annotation = ET.SubElement(entity_set, f"{{{EDM}}}Annotation", Term="Temporal.ApplicationTimeSupport")
    record = ET.SubElement(annotation, f"{{{EDM}}}Record")
    unit = ET.SubElement(record, f"{{{EDM}}}PropertyValue", Property="UnitOfTime")
    ET.SubElement(unit, f"{{{EDM}}}Record", Type="Temporal.UnitOfTimeDate")
    timeline = ET.SubElement(record, f"{{{EDM}}}PropertyValue", Property="Timeline")
    if es.time != TIMELINE or es.period is None:
        ET.SubElement(timeline, f"{{{EDM}}}Record", Type="Temporal.TimelineSnapshot")
        return
    visible = ET.SubElement(timeline, f"{{{EDM}}}Record", Type="Temporal.TimelineVisible")
    ET.SubElement(visible, f"{{{EDM}}}PropertyValue", Property="PeriodStart", PropertyPath=es.period[0])
    ET.SubElement(visible, f"{{{EDM}}}PropertyValue", Property="PeriodEnd", PropertyPath=es.period[1])
    key = ET.SubElement(visible, f"{{{EDM}}}PropertyValue", Property="ObjectKey")
    paths = ET.SubElement(key, f"{{{EDM}}}Collection")
    for name in es.object_key:
        ET.SubElement(paths, f"{{{EDM}}}PropertyPath").text = name
