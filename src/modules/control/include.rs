//! `include_tasks`, `import_tasks`, `include_role`, `import_role`: their typed arguments and
//! what a task of each names. Their work stays where it is: imports are inlined by the loader
//! before the run (`playbook::tasks`), includes are loaded by the executor when reached
//! (`exec::actions`), both through [`request`].

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::modules::runtime::{Args, ArgsExt, ModuleError};
use crate::modules::spec::ArgsRef;
use crate::playbook::tasks::FromFiles;

crate::module_args! {
    /// Inlines a task file here when the playbook is loaded (static). The file name cannot use
    /// loop or host variables.
    #[module(
        name = "import_tasks",
        free_form = true,
        check_args = file_or_free_form,
        backup = "A static import: its tasks are backed up one by one as they run.",
        examples = "- import_tasks: setup.yml"
    )]
    pub struct ImportTasksArgs {
        /// The task file, relative to the including file.
        #[arg(kind = Path)]
        file: Option<String>,
    }
}

crate::module_args! {
    /// Runs the tasks of a file at this point of the run (dynamic); the file name may be a
    /// template and the task may loop.
    #[module(
        name = "include_tasks",
        free_form = true,
        check_args = file_or_free_form,
        backup = "A dynamic include: its tasks are backed up one by one as they run.",
        examples = "- include_tasks: \"setup-{{ ansible_facts.os_family }}.yml\""
    )]
    pub struct IncludeTasksArgs {
        /// The task file, relative to the including file.
        #[arg(kind = Path)]
        file: Option<String>,
        /// Keywords applied to every included task.
        #[arg(kind = Dict)]
        apply: Value,
    }
}

crate::module_args! {
    /// Inlines a role's tasks here when the playbook is loaded (static): its tasks get this
    /// task's keywords, its handlers join the play.
    #[module(
        name = "import_role",
        backup = "A static import: its tasks are backed up one by one as they run.",
        examples = "- import_role:\n    name: nginx\n  vars:\n    nginx_port: 8080"
    )]
    pub struct ImportRoleArgs {
        /// The role.
        #[arg(required, aliases = &["role"])]
        name: String,
        /// Task file of the role's `tasks/` to run instead of `main`.
        tasks_from: Option<String>,
        /// File of the role's `vars/` to load instead of `main`.
        vars_from: Option<String>,
        /// File of the role's `defaults/` to load instead of `main`.
        defaults_from: Option<String>,
        /// File of the role's `handlers/` to load instead of `main`.
        handlers_from: Option<String>,
        /// Run the role again even when it already ran with the same parameters.
        #[arg(default = "yes")]
        allow_duplicates: bool,
        /// Expose the role's vars and defaults to the rest of the play.
        #[arg(default = "yes")]
        public: bool,
        /// Start the role with the validation of its argument spec (`meta/argument_specs.yml`)
        /// for the entry point.
        #[arg(default = "yes")]
        rolespec_validate: bool,
    }
}

crate::module_args! {
    /// Runs a role's tasks at this point of the run (dynamic): the task's `when` and loop apply
    /// to the include itself.
    #[module(
        name = "include_role",
        backup = "A dynamic include: its tasks are backed up one by one as they run.",
        examples = "- include_role:\n    name: app\n    tasks_from: upgrade"
    )]
    pub struct IncludeRoleArgs {
        /// The role.
        #[arg(required, aliases = &["role"])]
        name: String,
        /// Task file of the role's `tasks/` to run instead of `main`.
        tasks_from: Option<String>,
        /// File of the role's `vars/` to load instead of `main`.
        vars_from: Option<String>,
        /// File of the role's `defaults/` to load instead of `main`.
        defaults_from: Option<String>,
        /// File of the role's `handlers/` to load instead of `main`.
        handlers_from: Option<String>,
        /// Run the role again even when it already ran with the same parameters.
        #[arg(default = "yes")]
        allow_duplicates: bool,
        /// Expose the role's vars and defaults to the rest of the play.
        #[arg(default = "no")]
        public: bool,
        /// Start the role with the validation of its argument spec (`meta/argument_specs.yml`)
        /// for the entry point.
        #[arg(default = "yes")]
        rolespec_validate: bool,
        /// Keywords applied to every task of the role (`tags`, `become`...).
        #[arg(kind = Dict)]
        apply: Value,
    }
}

/// What an include or import task names, read from its (rendered) arguments.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The task file (`*_tasks`) or the role (`*_role`).
    pub target: String,
    /// The role's `*_from` files and `rolespec_validate: false` (empty for task files).
    pub from: FromFiles,
    /// Whether the role runs again where it already ran (`allow_duplicates`).
    pub allow_duplicates: bool,
    /// Whether the role's vars and defaults reach the rest of the play (`public`).
    pub public: bool,
    /// The keywords every included task gets (`apply`; null when not given).
    pub apply: Value,
}

/// Reads the arguments of `module` (one of the four); `None` for another module.
pub fn request(module: &str, args: &Args) -> Option<Result<Request, ModuleError>> {
    let file = |file: Option<String>| {
        file.or_else(|| args.str_arg(crate::modules::system::common::FREE_FORM))
            .unwrap_or_default()
    };
    let from = |tasks_from, vars_from, defaults_from, handlers_from, validate: bool| FromFiles {
        tasks_from,
        vars_from,
        defaults_from,
        handlers_from,
        no_validate: !validate,
    };
    Some(match module {
        "import_tasks" => ImportTasksArgs::parse(args).map(|a| Request {
            target: file(a.file),
            ..Request::default()
        }),
        "include_tasks" => IncludeTasksArgs::parse(args).map(|a| Request {
            target: file(a.file),
            apply: a.apply,
            ..Request::default()
        }),
        "import_role" => ImportRoleArgs::parse(args).map(|a| Request {
            target: a.name,
            from: from(
                a.tasks_from,
                a.vars_from,
                a.defaults_from,
                a.handlers_from,
                a.rolespec_validate,
            ),
            allow_duplicates: a.allow_duplicates,
            public: a.public,
            apply: Value::Null,
        }),
        "include_role" => IncludeRoleArgs::parse(args).map(|a| Request {
            target: a.name,
            from: from(
                a.tasks_from,
                a.vars_from,
                a.defaults_from,
                a.handlers_from,
                a.rolespec_validate,
            ),
            allow_duplicates: a.allow_duplicates,
            public: a.public,
            apply: a.apply,
        }),
        _ => return None,
    })
}

/// A task file is named once: free-form text or `file`.
fn file_or_free_form(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let msg = match (a.free_form.is_some(), a.has("file")) {
        (false, false) => format!("module '{}' needs a file name", a.module),
        (true, true) => format!(
            "module '{}' takes free-form text or 'file', not both",
            a.module
        ),
        _ => return Vec::new(),
    };
    vec![Diagnostic::at(a.module_loc, msg)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req(module: &str, v: Value) -> Result<Request, String> {
        let Value::Object(a) = v else {
            return Err("not a mapping".into());
        };
        request(module, &a)
            .unwrap_or_else(|| Err(ModuleError::Args("not an include".into())))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn include_and_import_requests_name_their_file_or_role_and_role_files() {
        let r = req("include_tasks", json!({"_raw_params": "a.yml"})).unwrap();
        assert_eq!(r.target, "a.yml");
        let r = req("import_tasks", json!({"file": "b.yml"})).unwrap();
        assert_eq!(r.target, "b.yml");
        let r = req(
            "include_role",
            json!({"name": "app", "tasks_from": "up", "rolespec_validate": "no", "apply": {"tags": ["x"]}}),
        )
        .unwrap();
        assert_eq!(r.target, "app");
        assert_eq!(r.from.tasks_from.as_deref(), Some("up"));
        assert_eq!(r.from.vars_from, None);
        assert!(r.from.no_validate && r.allow_duplicates && !r.public);
        assert_eq!(r.apply, json!({"tags": ["x"]}));
        let r = req("import_role", json!({"name": "db"})).unwrap();
        assert!(r.public, "import_role is public by default, as in Ansible");
        assert!(req("include_role", json!({"tasks_from": "x"})).is_err());
        assert!(req("debug", json!({})).is_err());
    }
}
