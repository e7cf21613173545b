//! Canonical bytes against Python's `json.dumps(v, sort_keys=True)`: every escape class,
//! non-BMP characters, nested and empty containers, large integers. Python gets each value
//! through serde_json (an independent encoder), so the comparison does not trust our output.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use occ_audit::canon::{Checker, LineError};
use occ_audit::Value;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Str(s) => s.clone().into(),
        Value::Array(a) => a.iter().map(to_serde).collect::<Vec<_>>().into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), to_serde(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Runs python3 over JSON lines; `mode` picks what it prints for each.
fn python(inputs: &[String], script: &str) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the canonical-form tests");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for line in inputs {
            writeln!(stdin, "{line}").expect("write to python");
        }
    }
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "python3 failed");
    String::from_utf8(out.stdout)
        .expect("python prints ASCII")
        .lines()
        .map(str::to_owned)
        .collect()
}

const DUMPS: &str =
    "import sys, json\nfor l in sys.stdin:\n    print(json.dumps(json.loads(l), sort_keys=True))";

fn assert_matches_python(values: &[Value]) {
    let inputs: Vec<String> = values
        .iter()
        .map(|v| serde_json::to_string(&to_serde(v)).expect("serde_json"))
        .collect();
    let want = python(&inputs, DUMPS);
    assert_eq!(want.len(), values.len());
    let mut checker = Checker::new();
    for (v, w) in values.iter().zip(&want) {
        let ours = String::from_utf8(v.to_canonical()).expect("ASCII");
        assert_eq!(&ours, w, "value {v:?}");
        assert!(checker.check(w.as_bytes()).is_ok(), "checker rejects {w}");
    }
}

fn obj(pairs: Vec<(String, Value)>) -> Value {
    Value::Object(pairs.into_iter().collect())
}

#[test]
fn every_escape_class_matches_python() {
    // Every ASCII character, alone and in context, as a value and as a key.
    let mut values: Vec<Value> = (0u8..0x80)
        .map(|c| {
            let s = format!("a{}b", c as char);
            obj(vec![(s.clone(), Value::Str(s))])
        })
        .collect();
    for s in [
        "\u{80}",
        "\u{a0}",
        "\u{e9}",
        "\u{7ff}",
        "\u{800}",
        "\u{200f}",
        "\u{2028}",
        "\u{d7ff}",
        "\u{e000}",
        "\u{feff}",
        "\u{fffd}",
        "\u{ffff}",
        "\u{10000}",
        "\u{1F600}",
        "\u{10FFFF}",
        "mixed \u{1b}[31m red \u{202e} bidi \t tab \"q\" \\ back / slash",
    ] {
        values.push(Value::Str(s.to_owned()));
        values.push(obj(vec![(s.to_owned(), Value::Null)]));
    }
    assert_matches_python(&values);
}

#[test]
fn key_order_containers_and_integers_match_python() {
    let mut keys = BTreeMap::new();
    for k in [
        "b",
        "a",
        "B",
        "",
        "\u{e9}",
        "\u{ffff}",
        "\u{1F600}",
        "aa",
        "a\u{0}",
    ] {
        keys.insert(k.to_owned(), Value::Int(k.len() as i64));
    }
    let values = vec![
        Value::Object(keys),
        Value::Array(vec![]),
        Value::Object(BTreeMap::new()),
        Value::Array(vec![Value::Array(vec![]), Value::Object(BTreeMap::new())]),
        obj(vec![(
            "n".into(),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(-1),
                Value::Int(i64::MAX),
                Value::Int(i64::MIN),
                Value::Bool(true),
                Value::Bool(false),
                Value::Null,
            ]),
        )]),
        obj(vec![(
            "deep".into(),
            (0..40).fold(Value::Null, |v, i| obj(vec![(format!("k{i}"), v)])),
        )]),
    ];
    assert_matches_python(&values);
}

#[test]
fn big_integers_round_trip_through_the_checker() {
    let inputs: Vec<String> = [
        "{\"n\": 123456789012345678901234567890}",
        "{\"n\": -99999999999999999999999999999999999999}",
        "{\"n\": 18446744073709551616}",
        "[9223372036854775808, -9223372036854775809]",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = python(&inputs, DUMPS);
    let mut checker = Checker::new();
    for (i, o) in inputs.iter().zip(&out) {
        assert_eq!(i, o, "python round trip");
        assert!(checker.check(o.as_bytes()).is_ok(), "{o}");
    }
}

/// Python's other spellings of the same value are valid JSON but not canonical.
#[test]
fn python_non_canonical_spellings_are_not_canonical() {
    let script = "import sys, json\nfor l in sys.stdin:\n    v = json.loads(l)\n    \
                  print(json.dumps(v))\n    print(json.dumps(v, sort_keys=True, separators=(',', ':')))\n    \
                  print(json.dumps(v, sort_keys=True, ensure_ascii=False))";
    let inputs = vec![
        r#"{"b": 1, "a": "\u00e9"}"#.to_owned(),
        r#"{"z": [1, 2], "y": {"x": "\ud83d\ude00"}}"#.to_owned(),
    ];
    let out = python(&inputs, script);
    let mut checker = Checker::new();
    for o in out {
        let got = checker.check(o.as_bytes()).map(|_| ());
        assert!(
            matches!(got, Err(LineError::NotCanonical(_))),
            "{o}: {got:?}"
        );
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<String>().prop_map(Value::Str),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..5).prop_map(Value::Object),
        ]
    })
}

#[test]
fn random_values_match_python() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(1));
    let strat = prop::collection::vec(arb_value(), 200);
    let values = strat.new_tree(&mut runner).expect("generate").current();
    assert_matches_python(&values);
}
