use super::*;
use crate::fs::MemFs;

fn load(text: &str) -> Arc<Schema> {
    let mut fs = MemFs::new();
    fs.insert("s.json", text);
    let loader = Loader::new(Arc::new(fs), "", Default::default());
    SchemaStore::new()
        .load(&loader, Path::new("s.json"))
        .unwrap()
}

#[test]
fn types_from_schema() {
    let s = load(
        r##"{"type": "object", "$defs": {"risk": {"type": "string", "enum": ["LOW", "HIGH"]}},
           "properties": {"risk-level": {"$ref": "#/$defs/risk"}, "rows": {"type": "integer"},
             "wait": {"type": "string", "format": "duration"},
             "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "boolean"}}}}},
           "required": ["risk-level"]}"##,
    );
    assert!(s.diags.is_empty(), "{:?}", s.diags);
    let Ty::Object(o) = &s.ty else {
        panic!("{:?}", s.ty)
    };
    let r = o.field("risk-level").unwrap();
    assert!(r.required);
    assert_eq!(r.ty.describe(), "enum [LOW, HIGH]");
    assert_eq!(o.field("rows").unwrap().ty, Ty::Integer);
    assert!(!o.field("rows").unwrap().required);
    assert_eq!(o.field("wait").unwrap().ty, Ty::Duration);
    assert_eq!(
        o.field("items").unwrap().ty.describe(),
        "list of object {x}"
    );
}

#[test]
fn all_of_merges_objects() {
    let s = load(
        r#"{"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                      {"type": "object", "properties": {"b": {"type": "number"}}}]}"#,
    );
    let Ty::Object(o) = &s.ty else { panic!() };
    assert!(o.field("a").unwrap().required);
    assert_eq!(o.field("b").unwrap().ty, Ty::Number);
}

#[test]
fn bad_refs_and_loops() {
    let s = load(
        r##"{"properties": {"a": {"$ref": "#/$defs/nope"}}, "$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "type": "object", "allOf": [{"$ref": "#/$defs/x"}]}"##,
    );
    let codes: Vec<&str> = s.diags.iter().map(|d| d.code.id).collect();
    assert!(codes.contains(&"PB3003"), "{codes:?}");
    assert!(
        s.diags.iter().any(|d| d.message.contains("loops")),
        "{:?}",
        s.diags
    );
}

#[test]
fn recursive_types_are_fine() {
    let s = load(
        r##"{"$defs": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}, "$ref": "#/$defs/node"}"##,
    );
    assert!(s.diags.is_empty(), "{:?}", s.diags);
}

#[test]
fn invalid_schema_is_reported_at_keyword() {
    let s =
        load("{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"strin\"}}\n}\n");
    assert_eq!(s.diags.len(), 1, "{:?}", s.diags);
    assert_eq!(s.diags[0].code.id, "PB3002");
}
