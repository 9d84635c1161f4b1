//! Lazy variables: the render context, built from ordered layers of variables, where a value
//! written in a playbook file is rendered only when a template reads it.
//!
//! This file owns name resolution across layers (later layers win), rendering of
//! [`VarValue::Template`] values on access with the whole [`LazyVars`] as their context (so
//! `a: "{{ b }}"` works whichever layer `b` is in), Ansible's native-type rule for those values,
//! the recursion guard, a per-object cache of resolved values, and the `vars` / `hostvars`
//! views. It must not decide the precedence order itself (`vars.rs` builds the layers) and
//! must not read files or hosts.
//!
//! **Why [`VarValue::Data`] is never rendered.** Values that come from hosts (gathered facts,
//! registered results, fetched or slurped content), from inventory scripts, or that were
//! written `!unsafe` are *data*: a host's registered stdout may contain `{{ lookup(...) }}`,
//! `{% for %}` or `$(rm -rf ~)` written by whoever controls that host, and evaluating it would
//! let a managed host run template code on the controller, or smuggle text into later
//! commands. Only text the operator wrote (inventory files, `group_vars`/`host_vars`, play
//! vars, vars_files, role defaults/vars, task vars, `-e`) is [`VarValue::Template`];
//! everything else is returned exactly as it came in. (Ansible marks such values "unsafe" for
//! the same reason.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Adds to `out` every string inside `v` that holds template syntax (for values that must stay
/// data: what a dynamic inventory script printed).
pub fn template_texts(v: &serde_json::Value, out: &mut std::collections::HashSet<String>) {
    match v {
        serde_json::Value::String(s) if super::has_template(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| template_texts(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| template_texts(x, out)),
        _ => {}
    }
}

/// True if any string inside `v` is one of `texts`.
pub fn holds_text(v: &serde_json::Value, texts: &std::collections::HashSet<String>) -> bool {
    match v {
        serde_json::Value::String(s) => texts.contains(s),
        serde_json::Value::Array(a) => a.iter().any(|x| holds_text(x, texts)),
        serde_json::Value::Object(m) => m.values().any(|x| holds_text(x, texts)),
        _ => false,
    }
}

/// One variable as a layer holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum VarValue {
    /// Data from hosts (facts, registered results, file contents), inventory scripts, or
    /// written `!unsafe`: returned as-is, never rendered, even if it contains `{{ }}`.
    Data(serde_json::Value),
    /// Text written in a playbook file (play vars, vars_files, role defaults/vars, task vars):
    /// rendered on access. A string that is exactly one `{{ expr }}` yields the native value.
    Template(serde_json::Value),
}

impl VarValue {
    /// A variable written in a playbook file: a template, unless tagged `!unsafe` (or
    /// decrypted from `!vault`), which is data.
    pub fn of_node(n: &crate::yaml::Node) -> VarValue {
        if n.tag.as_deref() == Some("unsafe") {
            VarValue::Data(n.to_json())
        } else {
            VarValue::Template(n.to_json())
        }
    }
}

/// One layer of variables: name → value. Layers are given lowest precedence first.
pub type Layer = IndexMap<String, VarValue>;

/// How deep variable templates may nest (`a` reads `b` reads `c` ...) before we stop.
const MAX_DEPTH: usize = 64;

thread_local! {
    /// Variables being rendered on this thread right now, outermost first, tagged with the
    /// identity of the `LazyVars` they belong to. Rendering is synchronous, so a thread-local
    /// stack sees exactly the current chain, and two threads rendering the same variables do
    /// not see each other's progress.
    static RENDERING: RefCell<Vec<(usize, String)>> = const { RefCell::new(Vec::new()) };
}

/// The variables a template is rendered against; use it as the context with
/// `Value::from_object(lazy)`.
///
/// Lookups go from the last layer to the first; values added with [`LazyVars::with_value`]
/// (such as `hostvars`) sit above every layer. `vars` (unless a layer defines it) is this
/// object itself, so `vars['x']` and `vars.x` work. A name no layer defines is *undefined*, so
/// strict undefined errors, `default()` and `is defined` behave as in Ansible. A template
/// value that fails only because something it reads is undefined is itself undefined (as in
/// Ansible), so `a | default(1)` works; any other failure (a syntax error, the recursion
/// guard) is an error wherever the variable is read.
///
/// Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct LazyVars {
    inner: Arc<Inner>,
}

struct Inner {
    layers: Arc<Vec<Layer>>,
    extra: IndexMap<String, Value>,
    /// Values for names nothing defines (the plan-time check's stand-ins for names only the
    /// host knows, such as `ansible_eth0`).
    fallback: Option<fn(&str) -> Option<Value>>,
    env: Arc<Environment<'static>>,
    /// Resolved values by name. Only successes are cached: layers never change, so a value
    /// once rendered is the value.
    cache: Mutex<HashMap<String, Value>>,
}

impl fmt::Debug for LazyVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyVars")
            .field("layers", &self.inner.layers.len())
            .field("names", &self.names().len())
            .finish()
    }
}

impl LazyVars {
    /// Variables from `layers` (lowest precedence first), rendered with `env`.
    pub fn new(layers: Vec<Layer>, env: Arc<Environment<'static>>) -> LazyVars {
        LazyVars::from_shared(Arc::new(layers), env)
    }

    /// Like [`LazyVars::new`] with layers already shared (several hosts' views of the same
    /// play vars, or [`HostVars`] building a host's view on demand).
    pub fn from_shared(layers: Arc<Vec<Layer>>, env: Arc<Environment<'static>>) -> LazyVars {
        LazyVars {
            inner: Arc::new(Inner {
                layers,
                extra: IndexMap::new(),
                fallback: None,
                env,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adds several values above every layer at once (cheaper than repeated
    /// [`LazyVars::with_value`]).
    pub fn with_values(self, values: impl IntoIterator<Item = (String, Value)>) -> LazyVars {
        let mut extra = self.inner.extra.clone();
        extra.extend(values);
        LazyVars {
            inner: Arc::new(Inner {
                layers: Arc::clone(&self.inner.layers),
                extra,
                fallback: self.inner.fallback,
                env: Arc::clone(&self.inner.env),
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Gives names nothing defines the value `fallback` returns for them (if any).
    pub fn with_fallback(self, fallback: fn(&str) -> Option<Value>) -> LazyVars {
        LazyVars {
            inner: Arc::new(Inner {
                layers: Arc::clone(&self.inner.layers),
                extra: self.inner.extra.clone(),
                fallback: Some(fallback),
                env: Arc::clone(&self.inner.env),
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Adds a ready value above every layer (for objects such as `hostvars`, or loop
    /// variables such as `item`). Returns a new object with a fresh cache.
    pub fn with_value(self, name: impl Into<String>, value: Value) -> LazyVars {
        self.with_values([(name.into(), value)])
    }

    /// This object as a template context.
    pub fn to_value(&self) -> Value {
        Value::from_object(self.clone())
    }

    /// Whether any layer (or an added value, or `vars`) defines `name`.
    pub fn contains(&self, name: &str) -> bool {
        name == "vars" || self.inner.extra.contains_key(name) || self.raw(name).is_some()
    }

    /// Every defined name, in the order each first appears (lowest layer first).
    pub fn names(&self) -> Vec<String> {
        let mut seen: IndexMap<&str, ()> = IndexMap::new();
        for layer in self.inner.layers.iter() {
            for name in layer.keys() {
                seen.insert(name, ());
            }
        }
        for name in self.inner.extra.keys() {
            seen.insert(name, ());
        }
        seen.into_keys().map(str::to_string).collect()
    }

    /// The value of `name`: `None` if nothing defines it, `Some(Err)` if its template could
    /// not be rendered (the error names the variable), else the value (rendered if it is a
    /// [`VarValue::Template`]).
    pub fn get(&self, name: &str) -> Option<Result<Value, Error>> {
        if let Some(v) = self.inner.extra.get(name) {
            return Some(Ok(v.clone()));
        }
        if let Some(v) = self.cached(name) {
            return Some(Ok(v));
        }
        let raw = match self.raw(name) {
            Some(raw) => raw,
            None if name == "vars" => return Some(Ok(self.to_value())),
            None => return self.inner.fallback.and_then(|f| f(name)).map(Ok),
        };
        let result = match raw {
            VarValue::Data(j) => Ok(super::json_to_value(j)),
            VarValue::Template(j) => self.render_template(name, j),
        };
        if let (Ok(v), Ok(mut cache)) = (&result, self.inner.cache.lock()) {
            cache.insert(name.to_string(), v.clone());
        }
        Some(result)
    }

    /// [`LazyVars::get`] as JSON data.
    pub fn get_json(&self, name: &str) -> Option<Result<serde_json::Value, Error>> {
        self.get(name)
            .map(|r| r.and_then(|v| super::value_to_json(&v)))
    }

    /// The highest-precedence raw entry for `name`.
    fn raw(&self, name: &str) -> Option<&VarValue> {
        self.inner
            .layers
            .iter()
            .rev()
            .find_map(|layer| layer.get(name))
    }

    fn cached(&self, name: &str) -> Option<Value> {
        self.inner
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(name).cloned())
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    fn render_template(&self, name: &str, raw: &serde_json::Value) -> Result<Value, Error> {
        if !contains_template(raw) {
            return Ok(super::json_to_value(raw));
        }
        let _guard = RenderGuard::enter(self.identity(), name)?;
        let ctx = self.to_value();
        match super::render_json(&self.inner.env, raw, &ctx) {
            Ok(j) => Ok(super::json_to_value(&j)),
            Err((e, source)) => {
                if is_passthrough(&e) {
                    return Err(e);
                }
                let described = super::describe_error(&self.inner.env, &e, &source, &ctx);
                // Undefined stays undefined (see `get_value`); anything else is already
                // described, so it must not be prefixed again by its kind.
                let kind = match e.kind() {
                    ErrorKind::UndefinedError => ErrorKind::UndefinedError,
                    _ => ErrorKind::InvalidOperation,
                };
                Err(Error::new(kind, format!("variable '{name}': {described}")))
            }
        }
    }
}

/// Errors that already say everything (the recursion guard) travel up unchanged.
fn is_passthrough(e: &Error) -> bool {
    e.detail()
        .is_some_and(|d| d.starts_with("recursive loop detected"))
}

fn contains_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => super::has_template(s),
        serde_json::Value::Array(a) => a.iter().any(contains_template),
        serde_json::Value::Object(m) => m
            .iter()
            .any(|(k, v)| super::has_template(k) || contains_template(v)),
        _ => false,
    }
}

/// Pushes a variable on this thread's rendering stack; pops it when dropped.
struct RenderGuard;

impl RenderGuard {
    fn enter(id: usize, name: &str) -> Result<RenderGuard, Error> {
        RENDERING.with(|stack| {
            let mut stack = stack.borrow_mut();
            if let Some(pos) = stack.iter().position(|(i, n)| *i == id && n == name) {
                let chain: Vec<&str> = stack[pos..]
                    .iter()
                    .filter(|(i, _)| *i == id)
                    .map(|(_, n)| n.as_str())
                    .chain(std::iter::once(name))
                    .collect();
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "recursive loop detected in template for variable '{name}' ({})",
                        chain.join(" -> ")
                    ),
                ));
            }
            if stack.len() >= MAX_DEPTH {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "recursive loop detected in template for variable '{name}': \
                         variables nest deeper than {MAX_DEPTH} levels"
                    ),
                ));
            }
            stack.push((id, name.to_string()));
            Ok(RenderGuard)
        })
    }
}

impl Drop for RenderGuard {
    fn drop(&mut self) {
        RENDERING.with(|stack| {
            stack.borrow_mut().pop();
        });
    }
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        // Before the run (a fallback is set), a name only known then (`hostvars[h][item.x]`)
        // is a stand-in object: what it names is just as unknown.
        if self.inner.fallback.is_some() && key.as_object().is_some() {
            return Some(key.clone());
        }
        let name = key.as_str()?;
        match self.get(name)? {
            Ok(v) => Some(v),
            // Ansible: a variable whose template reads something undefined is undefined.
            Err(e) if e.kind() == ErrorKind::UndefinedError => None,
            // Anything else fails wherever the variable is read.
            Err(e) => Some(Value::from(e)),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names().into_iter().map(Value::from).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.names().len())
    }
}

/// `hostvars`: every host's variables by host name, each built on demand as a [`LazyVars`]
/// (which itself sees `hostvars`). Holds layers, not `LazyVars`, so there is no reference cycle.
pub struct HostVars {
    hosts: IndexMap<String, Arc<Vec<Layer>>>,
    env: Arc<Environment<'static>>,
    /// Values for names a host's layers lack (the plan-time check stands in for registered
    /// results of other hosts with these).
    fallbacks: Vec<(String, Value)>,
    /// Given to each host's [`LazyVars`] (see [`LazyVars::with_fallback`]).
    fallback: Option<fn(&str) -> Option<Value>>,
}

impl fmt::Debug for HostVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostVars")
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HostVars {
    /// `hostvars` for these hosts, each with its layers lowest precedence first.
    pub fn new(
        hosts: IndexMap<String, Arc<Vec<Layer>>>,
        env: Arc<Environment<'static>>,
    ) -> Arc<HostVars> {
        Arc::new(HostVars {
            hosts,
            env,
            fallbacks: Vec::new(),
            fallback: None,
        })
    }

    /// `hostvars` for the plan-time check: `fallbacks` for the names a host does not define
    /// (stand-ins for run-time names), and `fallback` given to each host's [`LazyVars`]
    /// (see [`LazyVars::with_fallback`]).
    pub fn with_stand_ins(
        hosts: IndexMap<String, Arc<Vec<Layer>>>,
        env: Arc<Environment<'static>>,
        fallbacks: Vec<(String, Value)>,
        fallback: fn(&str) -> Option<Value>,
    ) -> Arc<HostVars> {
        Arc::new(HostVars {
            hosts,
            env,
            fallbacks,
            fallback: Some(fallback),
        })
    }

    /// One host's variables (with `hostvars` set to `self`).
    pub fn host(self: &Arc<Self>, name: &str) -> Option<LazyVars> {
        let layers = self.hosts.get(name)?;
        let lazy = LazyVars::from_shared(Arc::clone(layers), Arc::clone(&self.env));
        let missing: Vec<(String, Value)> = self
            .fallbacks
            .iter()
            .filter(|(n, _)| !lazy.contains(n))
            .cloned()
            .collect();
        let vars = lazy
            .with_values(missing)
            .with_value("hostvars", Value::from_dyn_object(Arc::clone(self)));
        Some(match self.fallback {
            Some(f) => vars.with_fallback(f),
            None => vars,
        })
    }

    /// This object as a template value.
    pub fn to_value(self: &Arc<Self>) -> Value {
        Value::from_dyn_object(Arc::clone(self))
    }
}

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.host(key.as_str()?).map(|l| l.to_value())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.hosts.keys().map(|k| Value::from(k.as_str())).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.hosts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Loc;
    use crate::template::{environment, render_str, render_value};
    use serde_json::json;

    fn env() -> Arc<Environment<'static>> {
        Arc::new(environment())
    }

    fn layer(entries: &[(&str, VarValue)]) -> Layer {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn t(v: serde_json::Value) -> VarValue {
        VarValue::Template(v)
    }

    fn d(v: serde_json::Value) -> VarValue {
        VarValue::Data(v)
    }

    fn render(lazy: &LazyVars, src: &str) -> Result<String, crate::diag::Diagnostic> {
        let e = environment();
        render_str(&e, src, &lazy.to_value(), &Loc::file_start("t.yml"))
    }

    #[test]
    fn later_layers_win() {
        let lazy = LazyVars::new(
            vec![
                layer(&[("a", d(json!(1))), ("b", d(json!("low")))]),
                layer(&[("b", d(json!("high")))]),
            ],
            env(),
        );
        assert_eq!(render(&lazy, "{{ a }} {{ b }}").unwrap(), "1 high");
        assert!(lazy.contains("a"));
        assert!(!lazy.contains("zz"));
        assert_eq!(lazy.names(), vec!["a", "b"]);
    }

    #[test]
    fn template_reads_variables_from_any_layer() {
        // `a` is in a low layer and reads `b` from a higher one, and vice versa.
        let lazy = LazyVars::new(
            vec![
                layer(&[("a", t(json!("{{ b }}-a"))), ("c", d(json!("C")))]),
                layer(&[("b", t(json!("{{ c }}-b")))]),
            ],
            env(),
        );
        assert_eq!(render(&lazy, "{{ a }}").unwrap(), "C-b-a");
        assert_eq!(lazy.get_json("a").unwrap().unwrap(), json!("C-b-a"));
    }

    #[test]
    fn data_is_never_rendered() {
        let lazy = LazyVars::new(
            vec![layer(&[
                ("secret", d(json!("boom"))),
                ("out", d(json!({"stdout": "{{ secret }} $(rm -rf ~)"}))),
                ("plain", d(json!("{{ secret }}"))),
            ])],
            env(),
        );
        assert_eq!(
            render(&lazy, "{{ out.stdout }}").unwrap(),
            "{{ secret }} $(rm -rf ~)"
        );
        assert_eq!(render(&lazy, "{{ plain }}").unwrap(), "{{ secret }}");
        // A template that reads data gets the data's text, not a second rendering of it.
        let lazy = LazyVars::new(
            vec![
                layer(&[("plain", d(json!("{{ 1 + 1 }}")))]),
                layer(&[("copy", t(json!("x{{ plain }}")))]),
            ],
            env(),
        );
        assert_eq!(render(&lazy, "{{ copy }}").unwrap(), "x{{ 1 + 1 }}");
    }

    #[test]
    fn native_types_from_single_expression() {
        let lazy = LazyVars::new(
            vec![layer(&[
                ("list", t(json!("{{ [1, 2] }}"))),
                ("n", t(json!("{{ 40 + 2 }}"))),
                ("flag", t(json!("{{ 1 == 1 }}"))),
                ("nested", t(json!({"xs": "{{ list }}", "s": "n={{ n }}"}))),
            ])],
            env(),
        );
        assert_eq!(lazy.get_json("list").unwrap().unwrap(), json!([1, 2]));
        assert_eq!(lazy.get_json("n").unwrap().unwrap(), json!(42));
        assert_eq!(lazy.get_json("flag").unwrap().unwrap(), json!(true));
        assert_eq!(
            lazy.get_json("nested").unwrap().unwrap(),
            json!({"xs": [1, 2], "s": "n=42"})
        );
        assert_eq!(render(&lazy, "{{ list | length }}").unwrap(), "2");
        assert_eq!(render(&lazy, "{{ n + 1 }}").unwrap(), "43");
    }

    #[test]
    fn recursion_is_an_error_naming_the_variable() {
        let lazy = LazyVars::new(
            vec![layer(&[
                ("a", t(json!("{{ b }}"))),
                ("b", t(json!("{{ a }}"))),
                ("self_ref", t(json!("x{{ self_ref }}"))),
            ])],
            env(),
        );
        let err = render(&lazy, "{{ a }}").unwrap_err();
        assert!(
            err.message
                .contains("recursive loop detected in template for variable 'a'"),
            "{err}"
        );
        let err = lazy.get("self_ref").unwrap().unwrap_err();
        assert!(
            err.to_string()
                .contains("recursive loop detected in template for variable 'self_ref'"),
            "{err}"
        );
        // The guard unwinds: a later, sound lookup still works.
        let lazy2 = LazyVars::new(vec![layer(&[("ok", t(json!("{{ 1 }}")))])], env());
        assert_eq!(render(&lazy2, "{{ ok }}").unwrap(), "1");
    }

    #[test]
    fn broken_template_in_a_variable_is_reported_once_with_its_name() {
        let lazy = LazyVars::new(vec![layer(&[("bad", t(json!("{{ 1 + }}")))])], env());
        let err = render(&lazy, "{{ bad | default('x') }}").unwrap_err();
        assert!(
            err.message
                .starts_with("variable 'bad': template syntax error:"),
            "{err}"
        );
        assert_eq!(err.message.matches("syntax error").count(), 1, "{err}");
    }

    #[test]
    fn unknown_names_are_undefined() {
        let lazy = LazyVars::new(vec![layer(&[("a", d(json!(1)))])], env());
        let err = render(&lazy, "{{ nope }}").unwrap_err();
        assert!(err.message.contains("'nope' is undefined"), "{err}");
        assert_eq!(render(&lazy, "{{ nope | default('x') }}").unwrap(), "x");
        assert_eq!(render(&lazy, "{{ nope is defined }}").unwrap(), "False");
        assert_eq!(render(&lazy, "{{ a is defined }}").unwrap(), "True");
        assert!(lazy.get("nope").is_none());
    }

    #[test]
    fn template_reading_undefined_is_undefined_but_explained() {
        let lazy = LazyVars::new(
            vec![layer(&[
                ("a", t(json!("{{ b }}"))),
                ("b", t(json!("{{ missing }}"))),
            ])],
            env(),
        );
        assert_eq!(
            render(&lazy, "{{ a | default('fallback') }}").unwrap(),
            "fallback"
        );
        let err = render(&lazy, "{{ a }}").unwrap_err();
        assert!(err.message.contains("'missing' is undefined"), "{err}");
        assert!(err.message.contains("variable 'a'"), "{err}");
    }

    #[test]
    fn vars_and_attribute_lookups() {
        let lazy = LazyVars::new(
            vec![layer(&[
                ("x", d(json!({"y": {"z": 3}}))),
                ("name", d(json!("x"))),
                ("t", t(json!("{{ vars['x'].y.z }}"))),
            ])],
            env(),
        );
        assert_eq!(render(&lazy, "{{ vars['x'].y.z }}").unwrap(), "3");
        assert_eq!(render(&lazy, "{{ vars[name]['y'] }}").unwrap(), "{'z': 3}");
        assert_eq!(render(&lazy, "{{ x.y.z }}").unwrap(), "3");
        assert_eq!(render(&lazy, "{{ t }}").unwrap(), "3");
        assert_eq!(
            render(&lazy, "{{ vars.nope is defined }}").unwrap(),
            "False"
        );
        assert_eq!(render(&lazy, "{{ 'x' in vars }}").unwrap(), "True");
        assert!(render(&lazy, "{{ x.nope }}").is_err());
    }

    #[test]
    fn hostvars_view_other_hosts() {
        let e = env();
        let mut hosts = IndexMap::new();
        hosts.insert(
            "web1".to_string(),
            Arc::new(vec![layer(&[
                ("ansible_host", d(json!("10.0.0.1"))),
                ("url", t(json!("http://{{ ansible_host }}/"))),
            ])]),
        );
        hosts.insert(
            "web2".to_string(),
            Arc::new(vec![layer(&[("ansible_host", d(json!("10.0.0.2")))])]),
        );
        let hv = HostVars::new(hosts, Arc::clone(&e));
        let Some(me) = hv.host("web2") else {
            panic!("web2 missing")
        };
        assert_eq!(
            render(&me, "{{ hostvars['web1'].url }} {{ ansible_host }}").unwrap(),
            "http://10.0.0.1/ 10.0.0.2"
        );
        assert_eq!(
            render(&me, "{{ hostvars | list | join(',') }}").unwrap(),
            "web1,web2"
        );
        assert_eq!(
            render(&me, "{{ hostvars.web1.hostvars.web2.ansible_host }}").unwrap(),
            "10.0.0.2"
        );
    }

    #[test]
    fn with_value_sits_above_layers() {
        let lazy = LazyVars::new(vec![layer(&[("item", d(json!("old")))])], env())
            .with_value("item", Value::from("new"));
        assert_eq!(render(&lazy, "{{ item }}").unwrap(), "new");
    }

    #[test]
    fn render_value_uses_lazy_context() {
        let lazy = LazyVars::new(
            vec![layer(&[("ports", t(json!("{{ [80, 443] }}")))])],
            env(),
        );
        let e = environment();
        let out = render_value(
            &e,
            &json!({"p": "{{ ports }}", "first": "{{ ports[0] }}"}),
            &lazy.to_value(),
            &Loc::file_start("t.yml"),
        )
        .unwrap();
        assert_eq!(out, json!({"p": [80, 443], "first": 80}));
    }

    #[test]
    fn pycompat_methods_on_lazy_vars() {
        let lazy = LazyVars::new(vec![layer(&[("a", d(json!(1)))])], env());
        assert_eq!(render(&lazy, "{{ vars.get('a') }}").unwrap(), "1");
        assert_eq!(render(&lazy, "{{ vars.get('zz', 5) }}").unwrap(), "5");
        assert_eq!(render(&lazy, "{{ 'a' in vars.keys() }}").unwrap(), "True");
    }
}
