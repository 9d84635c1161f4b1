//! Play-level resolution, between loading a playbook and planning it: what Ansible settles
//! once per play, before any of its tasks, with the play's own variables.
//!
//! Owns, per play and in Ansible's order: `vars_prompt` (an `-e` value, else the operator's
//! reply on a terminal, else the `default`, else an error), templated `vars_files` names
//! (rendered, then the file read; in a list, the first that exists), and the play keywords
//! Ansible templates with the play's variables (`hosts`, `serial`, `max_fail_percentage`, and
//! rdeploy's `soak`, `probe`, `rollback_scope` and typed `health` fields), rendered and then
//! parsed as if written literally. The variables are the play's (`vars`, `vars_files` read so
//! far, prompts, role defaults and vars), `-e` and `groups`; not the inventory's and not facts,
//! which ansible-playbook does not have there either. Every mistake names the keyword's
//! `FILE:LINE:COL`. It must not touch a host, decide precedence (that is `vars.rs`) or print:
//! questions go through an [`Asker`].

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::cli::settings::Settings;
use crate::diag::{Diagnostic, Diagnostics};
use crate::inventory::Inventory;
use crate::modules::spec::shown;
use crate::playbook::load::{apply_rendered, read_vars_file};
use crate::playbook::model::{Play, Playbook, VarPrompt};
use crate::playbook::probe::PLAY_LEVEL;
use crate::template::{self, LazyVars};
use crate::vars;
use crate::yaml::{Kind, Node};

/// Where `vars_prompt` questions are asked: the operator's terminal (`cli::prompt`), or a
/// test's.
pub trait Asker {
    /// Shows `question` and reads one line; `echo` false hides what is typed.
    fn ask(&mut self, question: &str, echo: bool) -> Result<String, String>;
    /// Shows one line (Ansible's "***** VALUES ENTERED DO NOT MATCH ****").
    fn say(&mut self, line: &str);
}

/// Resolves every play of `pb` in place: prompts, templated `vars_files`, templated play
/// keywords. `asker` is `None` when nobody can be asked (no terminal, `rdeploy plan`,
/// `--syntax-check`, listings): then a prompt takes `-e` or its `default`, or is an error.
pub fn plays(
    inv: &Inventory,
    pb: &mut Playbook,
    settings: &Settings,
    mut asker: Option<&mut dyn Asker>,
) -> Result<(), Diagnostics> {
    let mut errors = Diagnostics::new();
    let groups = template::json_to_value(&vars::groups_value(inv));
    for i in 0..pb.plays.len() {
        let mut r = Resolver {
            inv,
            settings,
            groups: groups.clone(),
            errors: &mut errors,
        };
        let before = r.errors.len();
        r.prompts(pb, i, &mut asker);
        if r.errors.len() == before {
            r.vars_files(pb, i);
        }
        if r.errors.len() == before {
            r.keywords(pb, i);
        }
    }
    errors.into_result(())
}

struct Resolver<'a> {
    inv: &'a Inventory,
    settings: &'a Settings,
    groups: minijinja::Value,
    errors: &'a mut Diagnostics,
}

/// What every play-level error about a rendered value adds.
fn play_vars_note(what: &str) -> String {
    format!(
        "{what} is rendered once per play, before the run, with the play's vars, vars_files, vars_prompt, role defaults and vars, -e and groups, as ansible-playbook does: inventory variables and facts are not defined there"
    )
}

impl Resolver<'_> {
    /// The play's variables as they stand now.
    fn context(&self, pb: &Playbook, i: usize) -> minijinja::Value {
        let stack = vars::play_stack(self.inv, pb, &pb.plays[i], &[], self.settings, false);
        let env = template::shared_environment();
        LazyVars::new(stack.layers(), env)
            .with_value("groups", self.groups.clone())
            .to_value()
    }

    /// Renders one string node to its value (a whole `{{ expr }}` keeps its type).
    fn render(&mut self, n: &Node, ctx: &minijinja::Value, what: &str) -> Option<Json> {
        let env = template::shared_environment();
        match template::render_value(&env, &n.to_json(), ctx, &n.loc) {
            Ok(v) => Some(v),
            Err(d) => {
                self.errors.push(d.note(play_vars_note(what)));
                None
            }
        }
    }

    fn prompts(&mut self, pb: &mut Playbook, i: usize, asker: &mut Option<&mut dyn Asker>) {
        let prompts = std::mem::take(&mut pb.plays[i].vars_prompt);
        for p in &prompts {
            if self.settings.extra_vars.contains_key(&p.name) {
                continue;
            }
            let ctx = self.context(pb, i);
            let value = match asker {
                Some(a) => self.ask(&mut **a, p, &ctx),
                None => match &p.default {
                    Some(d) => Some(d.clone()),
                    None => {
                        self.errors.push(Diagnostic::at(
                            &p.loc,
                            format!(
                                "vars_prompt '{}' has no default and no -e value, and rdeploy asks only when `rdeploy run` has a terminal (stdin is not one here): give it with `-e {}=...` (or a `default:`)",
                                p.name, p.name
                            ),
                        ));
                        None
                    }
                },
            };
            if let Some(v) = value {
                pb.plays[i].keywords.vars.push((p.name.clone(), v));
            }
        }
        pb.plays[i].vars_prompt = prompts;
    }

    /// Asks `p` on the terminal as ansible-playbook does: `PROMPT [DEFAULT]: `, an empty reply
    /// takes the default, `confirm` asks again until both replies match.
    fn ask(&mut self, a: &mut dyn Asker, p: &VarPrompt, ctx: &minijinja::Value) -> Option<Node> {
        let what = format!("vars_prompt '{}'", p.name);
        let text = |r: &mut Self, n: &Option<Node>| -> Option<Option<String>> {
            match n {
                None => Some(None),
                Some(n) => r.render(n, ctx, &what).map(|v| {
                    Some(match v {
                        Json::String(s) => s,
                        Json::Null => String::new(),
                        other => other.to_string(),
                    })
                }),
            }
        };
        let prompt = text(self, &p.prompt)?;
        let default = text(self, &p.default)?;
        let question = match (&prompt, &default) {
            (Some(q), Some(d)) => format!("{q} [{d}]: "),
            (Some(q), None) => format!("{q}: "),
            (None, _) => format!("input for {}: ", p.name),
        };
        let read = |a: &mut dyn Asker, q: &str| -> Result<String, String> { a.ask(q, !p.private) };
        let reply = loop {
            let first = read(a, &question);
            let first = match first {
                Ok(f) => f,
                Err(e) => {
                    self.errors.push(Diagnostic::at(
                        &p.loc,
                        format!("{what}: could not read the reply: {e}"),
                    ));
                    return None;
                }
            };
            if !p.confirm {
                break first;
            }
            match read(a, &format!("confirm {question}")) {
                Ok(second) if second == first => break first,
                Ok(_) => a.say("***** VALUES ENTERED DO NOT MATCH ****"),
                Err(e) => {
                    self.errors.push(Diagnostic::at(
                        &p.loc,
                        format!("{what}: could not read the reply: {e}"),
                    ));
                    return None;
                }
            }
        };
        if reply.is_empty()
            && let Some(d) = &p.default
        {
            return Some(d.clone());
        }
        Some(Node {
            kind: Kind::Str {
                value: reply,
                quoted: true,
            },
            loc: p.loc.clone(),
            tag: p.unsafe_.then(|| "unsafe".to_string()),
        })
    }

    /// Templated `vars_files` names: rendered with the variables known so far, then read.
    fn vars_files(&mut self, pb: &mut Playbook, i: usize) {
        for j in 0..pb.plays[i].vars_files.len() {
            if pb.plays[i].vars_files[j].vars.is_some() {
                continue;
            }
            let ctx = self.context(pb, i);
            let node = pb.plays[i].vars_files[j].node.clone();
            let dir = pb.plays[i].dir.clone();
            let list = matches!(node.kind, Kind::Seq(_));
            let names: Vec<&Node> = match &node.kind {
                Kind::Seq(items) => items.iter().collect(),
                _ => vec![&node],
            };
            let mut tried = Vec::new();
            let mut found = None;
            for n in names {
                let Some(name) = self.file_name(n, &ctx) else {
                    return;
                };
                let path = if Path::new(&name).is_absolute() {
                    PathBuf::from(&name)
                } else {
                    dir.join(&name)
                };
                if path.is_file() {
                    found = Some(path);
                    break;
                }
                tried.push((n.loc.clone(), path.display().to_string(), shown(n)));
            }
            let Some(path) = found else {
                let msg = if list {
                    let paths: Vec<&str> = tried.iter().map(|(_, p, _)| p.as_str()).collect();
                    Diagnostic::at(
                        &node.loc,
                        format!(
                            "none of the vars files in this list exists (looked for {})",
                            paths.join(", ")
                        ),
                    )
                } else {
                    let (loc, path, raw) = tried.swap_remove(0);
                    Diagnostic::at(
                        &loc,
                        format!("vars file '{path}' not found (rendered from {raw})"),
                    )
                };
                self.errors.push(msg);
                return;
            };
            match read_vars_file(&path) {
                Ok(v) => {
                    let vf = &mut pb.plays[i].vars_files[j];
                    vf.path = Some(path);
                    vf.vars = Some(v);
                }
                Err(ds) => {
                    self.errors.extend(Diagnostics(ds));
                    return;
                }
            }
        }
    }

    /// One `vars_files` name, rendered when it is a template.
    fn file_name(&mut self, n: &Node, ctx: &minijinja::Value) -> Option<String> {
        let Some(raw) = n.as_str() else {
            self.errors.push(Diagnostic::at(
                &n.loc,
                format!(
                    "'vars_files' entries must be file names, found {}",
                    shown(n)
                ),
            ));
            return None;
        };
        if !crate::modules::spec::is_template(n) {
            return Some(raw.to_string());
        }
        match self.render(n, ctx, "a templated 'vars_files' name")? {
            Json::String(s) if !s.trim().is_empty() => Some(s),
            other => {
                self.errors.push(
                    Diagnostic::at(
                        &n.loc,
                        format!(
                            "'vars_files' name {} must render to a file name, found {}",
                            shown(n),
                            short(&other)
                        ),
                    )
                    .note(play_vars_note("a 'vars_files' name")),
                );
                None
            }
        }
    }

    /// Templated play keywords: rendered, then parsed as if written so.
    fn keywords(&mut self, pb: &mut Playbook, i: usize) {
        let deferred = std::mem::take(&mut pb.plays[i].deferred);
        if deferred.is_empty() {
            return;
        }
        let ctx = self.context(pb, i);
        for (key, node) in &deferred {
            let what = format!("'{key}'");
            let rendered = if key == "health" {
                self.health(node, &ctx, &what)
            } else {
                self.tree(node, &ctx, &what)
            };
            let Some(rendered) = rendered else { continue };
            let play: &mut Play = &mut pb.plays[i];
            for d in apply_rendered(play, key, &rendered) {
                self.errors.push(d.note(format!(
                    "{what} is written as a template; this is its rendered value"
                )));
            }
        }
    }

    /// Every template string below `n` rendered (map keys as written), at its own position.
    fn tree(&mut self, n: &Node, ctx: &minijinja::Value, what: &str) -> Option<Node> {
        let kind = match &n.kind {
            Kind::Str { .. } if crate::modules::spec::is_template(n) => {
                let v = self.render(n, ctx, what)?;
                return Some(Node::from_json(&v, &n.loc));
            }
            Kind::Seq(items) => Kind::Seq(
                items
                    .iter()
                    .map(|i| self.tree(i, ctx, what))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Kind::Map(entries) => Kind::Map(
                entries
                    .iter()
                    .map(|(k, v)| Some((k.clone(), self.tree(v, ctx, what)?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return Some(n.clone()),
        };
        Some(Node {
            kind,
            loc: n.loc.clone(),
            tag: n.tag.clone(),
        })
    }

    /// `health`: only the typed fields of each probe are rendered now; URLs, addresses and
    /// commands stay templates, rendered per host when the probe runs.
    fn health(&mut self, n: &Node, ctx: &minijinja::Value, what: &str) -> Option<Node> {
        let Kind::Seq(items) = &n.kind else {
            return Some(n.clone());
        };
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let Kind::Map(entries) = &it.kind else {
                out.push(it.clone());
                continue;
            };
            let mut m = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let typed = k.as_str().is_some_and(|k| PLAY_LEVEL.contains(&k));
                let v = if typed {
                    self.tree(v, ctx, what)?
                } else {
                    v.clone()
                };
                m.push((k.clone(), v));
            }
            out.push(Node {
                kind: Kind::Map(m),
                loc: it.loc.clone(),
                tag: it.tag.clone(),
            });
        }
        Some(Node {
            kind: Kind::Seq(out),
            loc: n.loc.clone(),
            tag: n.tag.clone(),
        })
    }
}

/// A rendered value, short, for messages.
fn short(v: &Json) -> String {
    match v {
        Json::Null => "none".into(),
        Json::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}
