//! Tests of the public functions of `template`: rendering, the native-type rule, conditionals,
//! error positions and the referenced-variable analysis.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::Value;
use serde_json::json;

use super::*;

fn loc() -> Loc {
    let f: Arc<str> = Arc::from("play.yml");
    Loc::new(&f, 10, 7)
}

fn ctx(j: serde_json::Value) -> Value {
    json_to_value(&j)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn render_keeps_trailing_newline_and_does_not_escape() {
    let env = environment();
    let c = ctx(json!({"x": "<a & 'b'>"}));
    assert_eq!(
        render_str(&env, "v={{ x }}\n", &c, &loc()).unwrap(),
        "v=<a & 'b'>\n"
    );
    assert_eq!(
        render_str(&env, "{% if true %}\nyes\n{% endif %}\n", &c, &loc()).unwrap(),
        "yes\n"
    );
}

#[test]
fn strict_undefined_names_the_variable() {
    let env = environment();
    let e = render_str(&env, "hello {{ who }}", &ctx(json!({})), &loc()).unwrap_err();
    assert_eq!(e.loc, Some(loc()));
    assert!(e.message.contains("'who' is undefined"), "{e}");
    let e = render_str(&env, "{{ a.b.c }}", &ctx(json!({"a": {"x": 1}})), &loc()).unwrap_err();
    assert!(e.message.contains("'a.b' is undefined"), "{e}");
    let e = render_str(&env, "{{ who ~ 'x' }}", &ctx(json!({})), &loc()).unwrap_err();
    assert!(e.message.contains("'who' is undefined"), "{e}");
}

#[test]
fn errors_on_later_lines_move_the_location_down() {
    let env = environment();
    let src = "line one\nline two\n{{ missing }}\n";
    let e = render_str(&env, src, &ctx(json!({})), &loc()).unwrap_err();
    let at = e.loc.clone().unwrap();
    assert_eq!((at.line, at.col), (12, 1), "{e}");
    let e = render_str(&env, "ok\n{% if %}", &ctx(json!({})), &loc()).unwrap_err();
    assert!(e.message.starts_with("template syntax error"), "{e}");
    assert_eq!(e.loc.unwrap().line, 11);
}

#[test]
fn template_file_errors_report_the_line_and_column_in_the_file() {
    let env = environment();
    let file: Arc<str> = Arc::from("app.conf.j2");
    let at = |src: &str| {
        let e = render_file(&env, src, &ctx(json!({"a": 1})), &file).unwrap_err();
        let at = e.loc.clone().unwrap();
        (at.line, at.col, e.message)
    };
    // Undefined: the column of the variable, also on the first line.
    let (line, col, msg) = at("x = {{ a }}\n  y = {{ missing }}\n");
    assert_eq!((line, col), (2, 10), "{msg}");
    let (line, col, msg) = at("port: {{ missing }}");
    assert_eq!((line, col), (1, 10), "{msg}");
    // Syntax: the column of the token minijinja stopped at.
    let (line, col, msg) = at("ok\nok\n  x = {{ 1 + }}\n");
    assert!(msg.starts_with("template syntax error"), "{msg}");
    assert_eq!((line, col), (3, 14), "{msg}");
    // Columns count characters, not bytes.
    let (line, col, msg) = at("# \u{e9}t\u{e9}\n\u{e9}\u{e9} {{ missing }}\n");
    assert_eq!((line, col), (2, 7), "{msg}");
    // A value inside YAML keeps its own position and moves down by lines only.
    let e = render_str(&env, "ok\n  {{ missing }}", &ctx(json!({})), &loc()).unwrap_err();
    let at = e.loc.unwrap();
    assert_eq!((at.line, at.col), (11, 1));
    // A value at the very start of a file is still a value, not a whole file.
    let start = Loc::file_start("<extra vars>");
    let e = render_str(&env, "x {{ missing }}", &ctx(json!({})), &start).unwrap_err();
    let at = e.loc.unwrap();
    assert_eq!((at.line, at.col), (1, 1));
}

#[test]
fn render_value_native_rule() {
    let env = environment();
    let c = ctx(json!({"xs": [1, 2], "n": 5, "s": "str", "m": {"k": "v"}, "none": null}));
    let cases = [
        (json!("{{ [1, 2] }}"), json!([1, 2])),
        (json!("{{ xs }}"), json!([1, 2])),
        (json!("{{ n }}"), json!(5)),
        (json!("{{ n > 3 }}"), json!(true)),
        (json!("{{ m }}"), json!({"k": "v"})),
        (json!("{{ {'a': {'b': 1}} }}"), json!({"a": {"b": 1}})),
        (json!("{{ none }}"), json!(null)),
        (json!("{{- n -}}"), json!(5)),
        (json!("{{ s }}"), json!("str")),
        // Not a single expression: always a string.
        (json!(" {{ n }}"), json!(" 5")),
        (json!("{{ n }}{{ n }}"), json!("55")),
        (json!("{{ n }} and {{ n }}"), json!("5 and 5")),
        (json!("n={{ xs }}"), json!("n=[1, 2]")),
        (json!("plain"), json!("plain")),
        (json!(3), json!(3)),
        (json!(true), json!(true)),
        (
            json!({"a": ["{{ n }}", "x{{ n }}"], "{{ s }}_key": "{{ xs }}"}),
            json!({"a": [5, "x5"], "str_key": [1, 2]}),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            render_value(&env, &input, &c, &loc()).unwrap(),
            want,
            "{input}"
        );
    }
    let e = render_value(&env, &json!("{{ nope }}"), &c, &loc()).unwrap_err();
    assert!(e.message.contains("'nope' is undefined"), "{e}");
    assert_eq!(
        render_value(&env, &json!("{{ nope | default(omit) }}"), &c, &loc()).unwrap(),
        json!(OMIT)
    );
}

#[test]
fn eval_expr_and_bool() {
    let env = environment();
    let c = ctx(json!({
        "x": 3, "s": "false", "flag": "yes", "l": [], "r": {"rc": 0, "stdout": "ok"}
    }));
    assert_eq!(
        eval_expr(&env, "x + 1", &c, &loc()).unwrap(),
        Value::from(4)
    );
    assert_eq!(
        eval_expr(&env, "{{ x * 2 }}", &c, &loc()).unwrap(),
        Value::from(6)
    );
    let cases = [
        ("x == 3", true),
        ("x > 5", false),
        ("r.rc == 0 and 'ok' in r.stdout", true),
        ("r is succeeded", true),
        ("l", false),
        ("flag | bool", true),
        ("s | bool", false),
        ("undefined_thing is defined", false),
        ("r.stdout", true),
        ("x", true),
        ("{{ x == 3 }}", true),
    ];
    for (expr, want) in cases {
        assert_eq!(eval_bool(&env, expr, &c, &loc()).unwrap(), want, "{expr}");
    }
    let e = eval_bool(&env, "s", &c, &loc()).unwrap_err();
    assert!(e.message.contains("which Jinja treats as true"), "{e}");
    let e = eval_bool(&env, "missing", &c, &loc()).unwrap_err();
    assert!(e.message.contains("'missing' is undefined"), "{e}");
    let e = eval_bool(&env, "missing == 1", &c, &loc()).unwrap_err();
    assert!(e.message.contains("'missing' is undefined"), "{e}");
    let e = eval_bool(&env, "{{ x }} == 3", &c, &loc()).unwrap_err();
    assert!(e.message.contains("mixes an expression"), "{e}");
    let e = eval_bool(&env, "x ==", &c, &loc()).unwrap_err();
    assert!(e.message.contains("syntax error"), "{e}");
}

#[test]
fn referenced_vars_ignores_what_the_template_sets() {
    let env = environment();
    let src = "{% set local = a %}{{ local }}{% for item in items %}{{ item.x }}{{ loop.index }}\
               {% endfor %}{{ b.c | default(omit) }}{{ range(3) | list }}{{ lookup('env', 'X') }}\
               {% macro m(arg) %}{{ arg }}{{ d }}{% endmacro %}";
    assert_eq!(
        referenced_vars(&env, src, &loc()).unwrap(),
        set(&["a", "b", "d", "items"])
    );
    assert_eq!(
        referenced_vars(&env, "no templates", &loc()).unwrap(),
        set(&[])
    );
    let e = referenced_vars(&env, "line\n{{ a +  }}", &loc()).unwrap_err();
    assert!(e.message.contains("syntax error"), "{e}");
    assert_eq!(e.loc.unwrap().line, 11);
}

#[test]
fn expr_referenced_vars_lists_top_level_names() {
    let env = environment();
    assert_eq!(
        expr_referenced_vars(&env, "x.y == 1 and z is defined and omit != w['k']", &loc()).unwrap(),
        set(&["w", "x", "z"])
    );
    assert_eq!(
        expr_referenced_vars(&env, "{{ a }}", &loc()).unwrap(),
        set(&["a"])
    );
    assert_eq!(
        expr_referenced_vars(&env, "[1, 2] | map('int') | select('gt', n) | list", &loc()).unwrap(),
        set(&["n"])
    );
    assert!(expr_referenced_vars(&env, "a ==", &loc()).is_err());
}

#[test]
fn single_expression_detection() {
    let env = environment();
    assert_eq!(single_expression(&env, "{{ a }}"), Some(" a "));
    assert_eq!(
        single_expression(&env, "{{ {'a': {'b': 1}} }}"),
        Some(" {'a': {'b': 1}} ")
    );
    assert_eq!(single_expression(&env, "{{ a }} {{ b }}"), None);
    assert_eq!(single_expression(&env, "{{ a }}{{ b }}"), None);
    assert_eq!(single_expression(&env, "{{}}"), None);
    assert_eq!(single_expression(&env, "x{{ a }}"), None);
}

#[test]
fn value_json_round_trip() {
    let j = json!({"a": [1, -2, 2.5, "s", null, true], "b": {"c": {}}});
    assert_eq!(value_to_json(&json_to_value(&j)).unwrap(), j);
    assert!(value_to_json(&Value::UNDEFINED).is_err());
}

#[test]
fn python_methods_playbooks_call_give_pythons_results() {
    let env = environment();
    let c = ctx(json!({"l": ["a", "b", "c"], "s": "web-01.example", "d": {"k": 1}}));
    let r = |t: &str| render_str(&env, t, &c, &loc()).unwrap();
    assert_eq!(r("{{ l.index('b') }}"), "1");
    assert_eq!(r("{{ s.index('-') }} {{ s.rindex('e') }}"), "3 13");
    assert_eq!(r("{{ '42'.zfill(5) }} {{ '-4'.zfill(4) }}"), "00042 -004");
    assert_eq!(
        r("[{{ 'ab'.ljust(4, '.') }}|{{ 'ab'.rjust(4) }}|{{ 'abc'.center(6, '*') }}]"),
        "[ab..|  ab|*abc**]"
    );
    assert_eq!(r("{{ s.partition('.') }}"), "['web-01', '.', 'example']");
    assert_eq!(r("{{ 'a.b.c'.rsplit('.', 1) }}"), "['a.b', 'c']");
    assert_eq!(
        r("{{ 'aB'.swapcase() }} {{ d.copy().k }} {{ l.count('a') }}"),
        "Ab 1 1"
    );
    assert!(render_str(&env, "{{ l.index('z') }}", &c, &loc()).is_err());
}
