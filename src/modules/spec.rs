//! Module specifications: the static description of a module's arguments.
//!
//! Owns [`ModuleSpec`] and [`ArgSpec`] (names, aliases, required, kind, default, choices, one
//! line of documentation each) and the generic argument check that every module shares:
//! aliases resolved to canonical names, unknown and missing arguments, value kinds and choices.
//! The specs feed playbook validation and `rdeploy doc MODULE`. It must not run anything, read
//! files or render templates: a value that is a template is accepted as whatever it will become.

use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::yaml::{Kind, Node};

/// What kind of value an argument takes. Templates (`{{ ... }}`) are accepted for every kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// Text; a number or boolean is accepted and stringified later, as Ansible does.
    Str,
    /// A path on the controller or the host (text).
    Path,
    /// A boolean in any of Ansible's spellings (`yes`, `no`, `true`, `1`, ...).
    Bool,
    /// An integer (or a string of digits).
    Int,
    /// A list; a comma-separated string is accepted as Ansible does.
    List,
    /// A mapping.
    Dict,
    /// Anything (file modes, request bodies).
    Raw,
}

impl ArgKind {
    /// The word used in "expects ..." messages and in `rdeploy doc`.
    pub fn describe(self) -> &'static str {
        match self {
            ArgKind::Str => "a string",
            ArgKind::Path => "a path",
            ArgKind::Bool => "a boolean",
            ArgKind::Int => "an integer",
            ArgKind::List => "a list",
            ArgKind::Dict => "a mapping",
            ArgKind::Raw => "any value",
        }
    }
}

/// One argument of a module.
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    /// Canonical name; the loader stores arguments under this name.
    pub name: &'static str,
    /// Other accepted spellings (Ansible's aliases).
    pub aliases: &'static [&'static str],
    /// Whether the task must give it.
    pub required: bool,
    /// One sentence for `rdeploy doc`.
    pub doc: &'static str,
    /// The default, as text, for documentation only (the module applies it).
    pub default: Option<&'static str>,
    /// Allowed values, if restricted.
    pub choices: &'static [&'static str],
    /// The kind of value.
    pub kind: ArgKind,
}

impl ArgSpec {
    /// An optional text argument.
    pub const fn new(name: &'static str, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            aliases: &[],
            required: false,
            doc,
            default: None,
            choices: &[],
            kind: ArgKind::Str,
        }
    }

    /// Marks it required (the spelling `#[arg(required)]` of typed arguments uses).
    pub const fn required(self) -> ArgSpec {
        self.req()
    }

    /// Marks it required.
    pub const fn req(self) -> ArgSpec {
        ArgSpec {
            required: true,
            ..self
        }
    }

    /// Sets its aliases.
    pub const fn aliases(self, aliases: &'static [&'static str]) -> ArgSpec {
        ArgSpec { aliases, ..self }
    }

    /// Sets the documented default.
    pub const fn default(self, default: &'static str) -> ArgSpec {
        ArgSpec {
            default: Some(default),
            ..self
        }
    }

    /// Restricts it to `choices`.
    pub const fn choices(self, choices: &'static [&'static str]) -> ArgSpec {
        ArgSpec { choices, ..self }
    }

    /// Names it `name` instead of its field's name, for an argument whose name is a Rust
    /// keyword (`service`'s `use`: `#[arg(rename = "use")] use_: String`).
    pub const fn rename(self, name: &'static str) -> ArgSpec {
        ArgSpec { name, ..self }
    }

    /// Sets its kind.
    pub const fn kind(self, kind: ArgKind) -> ArgSpec {
        ArgSpec { kind, ..self }
    }

    /// Whether `word` names this argument (canonical name or alias).
    pub fn is_named(&self, word: &str) -> bool {
        self.name == word || self.aliases.contains(&word)
    }
}

/// Arguments of one task, after aliases were resolved, as handed to a module's own check.
#[derive(Clone, Copy, Debug)]
pub struct ArgsRef<'a> {
    /// Name of the module as written by the user (for messages).
    pub module: &'a str,
    /// Position of the module key, for "missing argument" messages.
    pub module_loc: &'a Loc,
    /// Arguments under their canonical names.
    pub args: &'a [(String, Node)],
    /// Free-form text (`command: ls -l`), when given.
    pub free_form: Option<&'a Node>,
}

impl<'a> ArgsRef<'a> {
    /// The value of argument `name` (canonical).
    pub fn get(&self, name: &str) -> Option<&'a Node> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether argument `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// One problem with the task's arguments, at the module's name.
    pub fn error(&self, msg: String) -> Vec<Diagnostic> {
        vec![Diagnostic::at(self.module_loc, msg)]
    }

    /// The problem that arguments `x` and `y` were both given, when they were.
    pub fn exclusive(&self, x: &str, y: &str) -> Vec<Diagnostic> {
        if self.has(x) && self.has(y) {
            self.error(format!(
                "arguments '{x}' and '{y}' of module '{}' are mutually exclusive",
                self.module
            ))
        } else {
            Vec::new()
        }
    }

    /// The value of `name` when it is literal text (not a template).
    pub fn literal(&self, name: &str) -> Option<String> {
        let n = self.get(name)?;
        if is_template(n) {
            return None;
        }
        n.scalar_string()
    }
}

/// A module-specific check over the already-resolved arguments (mutually exclusive options,
/// values that depend on each other). Returns every problem found.
pub type CheckFn = fn(&ArgsRef<'_>) -> Vec<Diagnostic>;

/// The description of one module.
#[derive(Clone, Copy, Debug)]
pub struct ModuleSpec {
    /// Canonical short name (`copy`); `ansible.builtin.copy` maps to it.
    pub name: &'static str,
    /// A short paragraph for `rdeploy doc` and the README.
    pub doc: &'static str,
    /// Whether it takes free-form text (`command: ls -l`).
    pub free_form: bool,
    /// Whether it accepts arbitrary argument names (`set_fact`).
    pub open_args: bool,
    /// Its arguments.
    pub args: &'static [ArgSpec],
    /// Its own extra check, if any.
    pub check_args: Option<CheckFn>,
    /// What rdeploy backs up on the host before the module changes something, and how
    /// `rdeploy rollback` restores it (or why it cannot): for `rdeploy doc`.
    pub backup: &'static str,
    /// The keys of its result (`register:`), each with a few words.
    pub returns: &'static [(&'static str, &'static str)],
    /// A task or two using it, as YAML.
    pub examples: &'static str,
}

impl ModuleSpec {
    /// The starting point of a typed module's spec (`module_args!`): no free-form text, no
    /// open arguments, no extra check; the macro fills in name, doc and arguments.
    pub const fn typed_defaults() -> ModuleSpec {
        ModuleSpec {
            name: "",
            doc: "",
            free_form: false,
            open_args: false,
            args: &[],
            check_args: None,
            backup: "",
            returns: &[],
            examples: "",
        }
    }

    /// Sets the backup and rollback text (`#[module(backup = "...")]`).
    pub const fn backup(self, backup: &'static str) -> ModuleSpec {
        ModuleSpec { backup, ..self }
    }

    /// Sets the result keys (`#[module(returns = &[("key", "what")])]`).
    pub const fn returns(self, returns: &'static [(&'static str, &'static str)]) -> ModuleSpec {
        ModuleSpec { returns, ..self }
    }

    /// Sets the examples (`#[module(examples = "...")]`).
    pub const fn examples(self, examples: &'static str) -> ModuleSpec {
        ModuleSpec { examples, ..self }
    }

    /// Sets whether it takes free-form text (`#[module(free_form = true)]`).
    pub const fn free_form(self, free_form: bool) -> ModuleSpec {
        ModuleSpec { free_form, ..self }
    }

    /// Sets whether it accepts any argument name (`#[module(open_args = true)]`, `set_fact`).
    pub const fn open_args(self, open_args: bool) -> ModuleSpec {
        ModuleSpec { open_args, ..self }
    }

    /// Sets its own extra check (`#[module(check_args = FN)]`).
    pub const fn check_args(self, check: CheckFn) -> ModuleSpec {
        ModuleSpec {
            check_args: Some(check),
            ..self
        }
    }

    /// The argument named `word` (canonical name or alias).
    pub fn arg(&self, word: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.is_named(word))
    }

    /// Checks and normalises a task's arguments: resolves aliases to canonical names, reports
    /// unknown, repeated and missing arguments, wrong kinds and values outside `choices`, then
    /// runs the module's own check. `args` pairs the key node with its value.
    pub fn validate(
        &'static self,
        module_loc: &Loc,
        args: Vec<(Node, Node)>,
        free_form: Option<&Node>,
        errors: &mut Vec<Diagnostic>,
    ) -> Vec<(String, Node)> {
        let mut out: Vec<(String, Node)> = Vec::new();
        if let Some(ff) = free_form
            && !self.free_form
        {
            errors.push(Diagnostic::at(
                &ff.loc,
                format!(
                    "module '{}' does not take free-form text; give key=value arguments or a mapping",
                    self.name
                ),
            ));
        }
        for (key, value) in args {
            let Some(word) = key.scalar_string() else {
                errors.push(Diagnostic::at(
                    &key.loc,
                    format!("argument names of module '{}' must be text", self.name),
                ));
                continue;
            };
            let canonical = match self.arg(&word) {
                Some(spec) => {
                    check_value(self.name, spec, &value, errors);
                    spec.name.to_string()
                }
                None if self.open_args => word,
                None => {
                    let names = self
                        .args
                        .iter()
                        .flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().copied()));
                    let msg = match did_you_mean(&word, names) {
                        _ if super::ansible::builtin_args(self.name)
                            .is_some_and(|mut a| a.any(|a| a == word)) =>
                        {
                            format!(
                                "argument '{word}' of module '{}' is not supported by rdeploy",
                                self.name
                            )
                        }
                        _ if let Some(m) =
                            super::ansible::package_manager_arg(self.name, &word) =>
                        {
                            format!(
                                "argument '{word}' of module '{}' is not supported by rdeploy \
                                 (Ansible passes it on to the host's package manager, such as '{m}')",
                                self.name
                            )
                        }
                        Some(s) => format!(
                            "unknown argument '{word}' for module '{}', did you mean '{s}'?",
                            self.name
                        ),
                        None => format!("unknown argument '{word}' for module '{}'", self.name),
                    };
                    errors.push(Diagnostic::at(&key.loc, msg));
                    continue;
                }
            };
            if let Some((_, first)) = out.iter().find(|(k, _)| *k == canonical) {
                errors.push(
                    Diagnostic::at(
                        &key.loc,
                        format!(
                            "argument '{canonical}' of module '{}' is given twice (an alias names the same argument)",
                            self.name
                        ),
                    )
                    .note(format!("first given at {}", first.loc)),
                );
                continue;
            }
            out.push((canonical, value));
        }
        for spec in self.args.iter().filter(|a| a.required) {
            if !out.iter().any(|(k, _)| k == spec.name) {
                errors.push(Diagnostic::at(
                    module_loc,
                    format!(
                        "missing required argument '{}' for module '{}'",
                        spec.name, self.name
                    ),
                ));
            }
        }
        if let Some(check) = self.check_args {
            errors.extend(check(&ArgsRef {
                module: self.name,
                module_loc,
                args: &out,
                free_form,
            }));
        }
        out
    }
}

/// Whether a node is text that Jinja will render (`{{`, `{%` or `{#` inside).
pub fn is_template(n: &Node) -> bool {
    n.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%") || s.contains("{#"))
}

/// Ansible's `boolean(value, strict=True)`: the accepted spellings of true and false.
pub fn ansible_bool(n: &Node) -> Option<bool> {
    match &n.kind {
        Kind::Bool(b) => Some(*b),
        Kind::Int(1) => Some(true),
        Kind::Int(0) => Some(false),
        Kind::Float(f) if *f == 1.0 => Some(true),
        Kind::Float(f) if *f == 0.0 => Some(false),
        Kind::Str { value, .. } => match value.to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A short rendering of a scalar for messages (`'maybe'`), or its type name.
pub fn shown(n: &Node) -> String {
    match &n.kind {
        Kind::Seq(_) | Kind::Map(_) | Kind::Null => n.type_name().to_string(),
        _ => format!("'{}'", n.scalar_string().unwrap_or_default()),
    }
}

fn check_value(module: &str, spec: &ArgSpec, value: &Node, errors: &mut Vec<Diagnostic>) {
    if is_template(value) {
        return;
    }
    let ok = match spec.kind {
        ArgKind::Raw => true,
        ArgKind::Str | ArgKind::Path => !matches!(value.kind, Kind::Seq(_) | Kind::Map(_)),
        ArgKind::Bool => ansible_bool(value).is_some(),
        ArgKind::Int => match &value.kind {
            Kind::Int(_) => true,
            Kind::Str { value, .. } => value.trim().parse::<i64>().is_ok(),
            _ => false,
        },
        ArgKind::List => !matches!(value.kind, Kind::Map(_)),
        ArgKind::Dict => matches!(value.kind, Kind::Map(_) | Kind::Null),
    };
    if !ok {
        errors.push(Diagnostic::at(
            &value.loc,
            format!(
                "argument '{}' of module '{module}' expects {}, found {}",
                spec.name,
                spec.kind.describe(),
                shown(value)
            ),
        ));
        return;
    }
    if !spec.choices.is_empty()
        && let Some(text) = value.scalar_string()
        && !matches!(value.kind, Kind::Seq(_) | Kind::Map(_))
        && !spec.choices.contains(&text.as_str())
    {
        let mut msg = format!(
            "value '{text}' for argument '{}' of module '{module}' is not one of: {}",
            spec.name,
            spec.choices.join(", ")
        );
        if let Some(s) = did_you_mean(&text, spec.choices.iter().copied()) {
            msg.push_str(&format!("; did you mean '{s}'?"));
        }
        errors.push(Diagnostic::at(&value.loc, msg));
    }
}
