//! Typed module arguments: one Rust struct per module that is at once its spec, its parser and
//! its `rdeploy doc` text.
//!
//! Owns the [`module_args!`](crate::module_args) macro and the [`ArgValue`] conversions it
//! uses. A module declares its arguments once:
//!
//! ```ignore
//! crate::module_args! {
//!     /// Reports whether a path exists (the module's doc paragraph).
//!     #[module(name = "stat")]
//!     pub struct StatArgs {
//!         /// The path to inspect.
//!         #[arg(required, kind = Path, aliases = &["dest", "name"])]
//!         path: String,
//!         /// Follow a symlink at `path`.
//!         #[arg(default = "no")]
//!         follow: bool,
//!     }
//! }
//! ```
//!
//! and gets the struct, `StatArgs::SPEC` (a [`ModuleSpec`](super::ModuleSpec) whose argument
//! table, kinds, aliases, required flags, defaults, choices and docs come from the fields) and
//! `StatArgs::parse(&Args)`, which reads every field with Ansible's coercions (booleans in any
//! spelling, integers given as text, a string as a one-item list), applies the documented
//! default, checks `choices` again (a templated value could not be checked when the playbook was
//! loaded) and refuses an argument that has no field (unless the module takes any name,
//! `open_args`, as `set_fact` does: then the module reads the others itself). The words inside
//! `#[arg(...)]` are the [`ArgSpec`](super::ArgSpec) builder methods (`required`, `kind`,
//! `aliases`, `default`, `choices`), so a default is written once and both documented and
//! applied.
//!
//! Fields should be private to the module's file: then the compiler's dead-code lint (an error
//! under `clippy -D warnings`) proves that every documented argument is read by the module. The
//! kind defaults to what the field's type takes ([`ArgValue::KIND`]). Each argument's doc is its
//! `///` lines joined. It must not run anything: parsing is pure.

use serde_json::Value;

use super::runtime::{Args, ArgsExt, ModuleError};
use super::spec::{ArgKind, ArgSpec};

/// A field type of a typed argument struct: how it is read from the rendered arguments.
pub trait ArgValue: Sized {
    /// The kind the spec documents unless the field says `kind = ...`.
    const KIND: ArgKind;
    /// Reads argument `spec.name` from `args`: absent (or null) gives `spec.default`, then the
    /// type's empty value; a required argument that is absent is an error.
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError>;
}

fn missing(spec: &ArgSpec) -> ModuleError {
    ModuleError::Args(format!("missing required argument '{}'", spec.name))
}

fn given<'a>(args: &'a Args, spec: &ArgSpec) -> Option<&'a Value> {
    args.get(spec.name).filter(|v| !v.is_null())
}

fn check_choice(spec: &ArgSpec, text: &str) -> Result<(), ModuleError> {
    if spec.choices.is_empty() || spec.choices.contains(&text) {
        return Ok(());
    }
    Err(ModuleError::Args(format!(
        "value '{text}' for argument '{}' is not one of: {}",
        spec.name,
        spec.choices.join(", ")
    )))
}

impl ArgValue for Option<String> {
    const KIND: ArgKind = ArgKind::Str;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        let text = match given(args, spec) {
            Some(_) => args.str_arg(spec.name),
            None => spec.default.map(str::to_string),
        };
        if let Some(t) = &text {
            check_choice(spec, t)?;
        }
        Ok(text)
    }
}

impl ArgValue for String {
    const KIND: ArgKind = ArgKind::Str;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match Option::<String>::read(args, spec)? {
            Some(t) => Ok(t),
            None if spec.required => Err(missing(spec)),
            None => Ok(String::new()),
        }
    }
}

fn bool_default(spec: &ArgSpec) -> Result<Option<bool>, ModuleError> {
    let Some(d) = spec.default else {
        return Ok(None);
    };
    let mut m = Args::new();
    m.insert(spec.name.into(), Value::from(d));
    m.bool_arg(spec.name, false).map(Some)
}

impl ArgValue for Option<bool> {
    const KIND: ArgKind = ArgKind::Bool;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match given(args, spec) {
            Some(_) => args.bool_arg(spec.name, false).map(Some),
            None => bool_default(spec),
        }
    }
}

impl ArgValue for bool {
    const KIND: ArgKind = ArgKind::Bool;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match Option::<bool>::read(args, spec)? {
            Some(b) => Ok(b),
            None if spec.required => Err(missing(spec)),
            None => Ok(false),
        }
    }
}

fn int_of(spec: &ArgSpec, v: &Value) -> Result<i64, ModuleError> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        ModuleError::Args(format!(
            "argument '{}' expects an integer, found {}",
            spec.name,
            match v {
                Value::String(s) => format!("'{s}'"),
                other => other.to_string(),
            }
        ))
    })
}

impl ArgValue for Option<i64> {
    const KIND: ArgKind = ArgKind::Int;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match given(args, spec) {
            Some(v) => int_of(spec, v).map(Some),
            None => spec
                .default
                .map(|d| int_of(spec, &Value::from(d)))
                .transpose(),
        }
    }
}

impl ArgValue for i64 {
    const KIND: ArgKind = ArgKind::Int;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match Option::<i64>::read(args, spec)? {
            Some(n) => Ok(n),
            None if spec.required => Err(missing(spec)),
            None => Ok(0),
        }
    }
}

/// A list: a sequence, or one string (not split on commas; use [`CommaList`] for that); absent,
/// the documented default as its one item.
impl ArgValue for Vec<String> {
    const KIND: ArgKind = ArgKind::List;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match (given(args, spec), spec.default) {
            (None, _) if spec.required => Err(missing(spec)),
            (None, Some(d)) => Ok(vec![d.to_string()]),
            _ => Ok(args.list_arg(spec.name, false)),
        }
    }
}

/// Any value, as rendered (messages, file modes, request bodies); `Value::Null` when absent and
/// without a default. A null that was given stays null (`debug: msg: ~` prints `null`, as in
/// Ansible), unlike the other kinds, where null means "not given".
impl ArgValue for Value {
    const KIND: ArgKind = ArgKind::Raw;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match args.get(spec.name) {
            Some(v) => Ok(v.clone()),
            None if spec.required => Err(missing(spec)),
            None => Ok(spec.default.map(Value::from).unwrap_or(Value::Null)),
        }
    }
}

/// Refuses arguments that no field reads (the loader already refused them with a position when
/// they were written in the playbook; this catches arguments built at run time, such as `args:`
/// from a variable). `_ansible_*`-style internal keys starting with `_` are left to the caller.
pub fn refuse_unknown(module: &str, args: &Args, specs: &[ArgSpec]) -> Result<(), ModuleError> {
    for k in args.keys() {
        if !k.starts_with('_') && !specs.iter().any(|s| s.name == k.as_str()) {
            return Err(ModuleError::Args(format!(
                "argument '{k}' of module '{module}' is not supported by rdeploy"
            )));
        }
    }
    Ok(())
}

/// `///` lines joined into one paragraph (each line's leading space separates it from the one
/// before), for a `const` doc string.
pub const fn doc_text(joined: &'static str) -> &'static str {
    joined.trim_ascii()
}

/// Declares a module's typed argument struct, its [`ModuleSpec`](crate::modules::ModuleSpec)
/// (`NAME::SPEC`) and its parser (`NAME::parse`). See [`crate::modules::typed`].
#[macro_export]
macro_rules! module_args {
    (
        $(#[doc = $mdoc:literal])*
        #[module(name = $mname:literal $(, $mkey:ident = $mval:expr)* $(,)?)]
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[arg($($akey:ident $(= $aval:expr)?),* $(,)?)])?
                $fname:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $(#[doc = $mdoc])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                $fname: $fty,
            )*
        }

        impl $name {
            /// The argument table, one row per field, in field order.
            pub const ARGS: &'static [$crate::modules::spec::ArgSpec] = &[
                $({
                    #[allow(unused_imports)]
                    use $crate::modules::spec::ArgKind::*;
                    $crate::modules::spec::ArgSpec::new(
                        stringify!($fname),
                        $crate::modules::typed::doc_text(concat!($($doc),*)),
                    )
                    .kind(<$fty as $crate::modules::typed::ArgValue>::KIND)
                    $($(.$akey($($aval)?))*)?
                }),*
            ];

            /// The module's spec: name, doc paragraph and [`Self::ARGS`].
            pub const SPEC: $crate::modules::spec::ModuleSpec =
                $crate::modules::spec::ModuleSpec {
                    name: $mname,
                    doc: $crate::modules::typed::doc_text(concat!($($mdoc),*)),
                    args: Self::ARGS,
                    ..$crate::modules::spec::ModuleSpec::typed_defaults()
                    $(.$mkey($mval))*
                };

            /// Reads the rendered arguments into the struct (defaults applied, kinds coerced,
            /// choices and unknown arguments refused).
            pub fn parse(
                args: &$crate::modules::runtime::Args,
            ) -> Result<Self, $crate::modules::runtime::ModuleError> {
                if !Self::SPEC.open_args {
                    $crate::modules::typed::refuse_unknown($mname, args, Self::ARGS)?;
                }
                // A module without arguments (`meta`, `service_facts`) reads none.
                #[allow(unused_mut, unused_variables)]
                let mut specs = Self::ARGS.iter();
                Ok($name {
                    $(
                        $fname: {
                            let spec = specs.next().ok_or_else(|| {
                                $crate::modules::runtime::ModuleError::Args(
                                    "argument table out of step with its struct".into(),
                                )
                            })?;
                            <$fty as $crate::modules::typed::ArgValue>::read(args, spec)?
                        },
                    )*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::registry::MODULES;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => m,
            _ => Args::new(),
        }
    }

    /// For every module: its spec is what the registry (and so validation and
    /// `rdeploy doc`) uses, every documented argument is a field that `parse` reads (given
    /// alone it parses; the field set is the table), and an argument without a field is refused.
    /// That every field is read by the module itself is the compiler's dead-code lint (fields are
    /// private to the module's file).
    #[test]
    fn every_typed_argument_is_documented_and_read() {
        for spec in MODULES.iter().map(|e| e.spec) {
            assert!(!spec.doc.is_empty(), "{}", spec.name);
            assert!(
                std::ptr::eq(crate::modules::lookup(spec.name).unwrap(), spec),
                "{} is looked up elsewhere",
                spec.name
            );
            for a in spec.args {
                assert!(!a.doc.is_empty(), "{}.{} has no doc", spec.name, a.name);
                if let Some(d) = a.default
                    && !a.choices.is_empty()
                {
                    assert!(a.choices.contains(&d), "{}.{}", spec.name, a.name);
                }
            }
        }
    }

    #[test]
    fn stat_args_parse_with_ansible_spellings_and_defaults() {
        use crate::modules::files::stat::StatArgs;
        let a = StatArgs::parse(&args(json!({"path": "/x", "follow": "yes"}))).unwrap();
        let text = format!("{a:?}");
        assert!(text.contains("checksum_algorithm: \"sha1\""), "{text}");
        assert!(text.contains("get_checksum: true"), "{text}");
        assert!(text.contains("follow: true"), "{text}");
        let e = StatArgs::parse(&args(json!({"follow": true}))).unwrap_err();
        assert_eq!(e.to_string(), "missing required argument 'path'");
        let e = StatArgs::parse(&args(json!({"path": "/x", "get_mime": true}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 'get_mime' of module 'stat' is not supported by rdeploy"
        );
        let e = StatArgs::parse(&args(json!({"path": "/x", "follow": "maybe"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 'follow' expects a boolean, found 'maybe'"
        );
        let e =
            StatArgs::parse(&args(json!({"path": "/x", "checksum_algorithm": "crc"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "value 'crc' for argument 'checksum_algorithm' is not one of: md5, sha1, sha224, sha256, sha384, sha512"
        );
    }
}
