//! What an unknown filter or test is called in the error the plan-time check reports.
//!
//! A name that belongs to a collection rdeploy does not carry (`json_query`, `ipaddr`,
//! `community.general.*`, `ansible.utils.*`, ...) says so: "filter 'json_query'
//! (community.general) is not supported by rdeploy". Any other name is "unknown", with a
//! did-you-mean among the filters (tests) rdeploy has when one is close. The short names
//! come from ansible-core 2.19's `config/ansible_builtin_runtime.yml` (the names it
//! redirects to collections) and the filters and tests of community.general, ansible.utils
//! and ansible.netcommon that playbooks call by short name under `collections:`.
//!
//! It owns wording only; it must not decide whether a name exists (the environment does).

use minijinja::ErrorKind;

use super::filters::{ANSIBLE_FILTERS, ANSIBLE_TESTS};

/// Filters by short name, and the collection each comes from.
const COLLECTION_FILTERS: &[(&str, &str)] = &[
    // ansible_builtin_runtime.yml redirects (the ip filters now live in ansible.utils).
    ("json_query", "community.general"),
    ("random_mac", "community.general"),
    ("cidr_merge", "ansible.utils"),
    ("hwaddr", "ansible.utils"),
    ("ip4_hex", "ansible.utils"),
    ("ipaddr", "ansible.utils"),
    ("ipmath", "ansible.utils"),
    ("ipsubnet", "ansible.utils"),
    ("ipv4", "ansible.utils"),
    ("ipv6", "ansible.utils"),
    ("ipwrap", "ansible.utils"),
    ("network_in_network", "ansible.utils"),
    ("network_in_usable", "ansible.utils"),
    ("next_nth_usable", "ansible.utils"),
    ("nthhost", "ansible.utils"),
    ("previous_nth_usable", "ansible.utils"),
    ("reduce_on_network", "ansible.utils"),
    ("slaac", "ansible.utils"),
    ("macaddr", "ansible.utils"),
    ("ipcut", "ansible.utils"),
    ("ipv4form", "ansible.utils"),
    ("ipv6form", "ansible.utils"),
    ("usable_range", "ansible.utils"),
    ("consolidate", "ansible.utils"),
    ("fact_diff", "ansible.utils"),
    ("from_xml", "ansible.utils"),
    ("to_xml", "ansible.utils"),
    ("get_path", "ansible.utils"),
    ("index_of", "ansible.utils"),
    ("param_list_compare", "ansible.utils"),
    ("to_paths", "ansible.utils"),
    ("validate", "ansible.utils"),
    ("comp_type5", "ansible.netcommon"),
    ("hash_salt", "ansible.netcommon"),
    ("parse_cli", "ansible.netcommon"),
    ("parse_cli_textfsm", "ansible.netcommon"),
    ("parse_xml", "ansible.netcommon"),
    ("type5_pw", "ansible.netcommon"),
    ("vlan_parser", "ansible.netcommon"),
    ("gcp_kms_decrypt", "google.cloud"),
    ("gcp_kms_encrypt", "google.cloud"),
    ("k8s_config_resource_name", "kubernetes.core"),
    // community.general filters called by short name.
    ("accumulate", "community.general"),
    ("counter", "community.general"),
    ("crc32", "community.general"),
    ("dict_kv", "community.general"),
    ("from_csv", "community.general"),
    ("from_ini", "community.general"),
    ("to_ini", "community.general"),
    ("groupby_as_dict", "community.general"),
    ("hashids_decode", "community.general"),
    ("hashids_encode", "community.general"),
    ("jc", "community.general"),
    ("json_diff", "community.general"),
    ("json_patch", "community.general"),
    ("json_patch_recipe", "community.general"),
    ("keep_keys", "community.general"),
    ("remove_keys", "community.general"),
    ("replace_keys", "community.general"),
    ("lists_difference", "community.general"),
    ("lists_intersect", "community.general"),
    ("lists_mergeby", "community.general"),
    ("lists_symmetric_difference", "community.general"),
    ("lists_union", "community.general"),
    ("reveal_ansible_type", "community.general"),
    ("to_prettytable", "community.general"),
    ("to_time_unit", "community.general"),
    ("to_milliseconds", "community.general"),
    ("to_seconds", "community.general"),
    ("to_minutes", "community.general"),
    ("to_hours", "community.general"),
    ("to_days", "community.general"),
    ("to_weeks", "community.general"),
    ("to_months", "community.general"),
    ("to_years", "community.general"),
    ("unicode_normalize", "community.general"),
    ("version_sort", "community.general"),
];

/// Tests by short name, and the collection each comes from.
const COLLECTION_TESTS: &[(&str, &str)] = &[
    ("a_module", "community.general"),
    ("ansible_type", "community.general"),
    ("fqdn_valid", "community.general"),
    ("in_any_network", "ansible.utils"),
    ("in_network", "ansible.utils"),
    ("in_one_network", "ansible.utils"),
    ("ip", "ansible.utils"),
    ("ip_address", "ansible.utils"),
    ("ipv4_address", "ansible.utils"),
    ("ipv4_hostmask", "ansible.utils"),
    ("ipv4_netmask", "ansible.utils"),
    ("ipv6_address", "ansible.utils"),
    ("ipv6_ipv4_mapped", "ansible.utils"),
    ("ipv6_sixtofour", "ansible.utils"),
    ("ipv6_teredo", "ansible.utils"),
    ("loopback", "ansible.utils"),
    ("mac", "ansible.utils"),
    ("multicast", "ansible.utils"),
    ("private", "ansible.utils"),
    ("public", "ansible.utils"),
    ("reserved", "ansible.utils"),
    ("resolvable", "ansible.utils"),
    ("subnet_of", "ansible.utils"),
    ("supernet_of", "ansible.utils"),
    ("unspecified", "ansible.utils"),
];

/// minijinja's (Jinja's) own filters and tests, for did-you-mean.
const JINJA_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
    "dict",
];

const JINJA_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "greaterthan",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
    "startingwith",
    "endingwith",
];

/// Filters and tests that the playbook's or a role's `filter_plugins/` and `test_plugins/`
/// define in Python: (kind, name, file). rdeploy runs none of them; naming them in the error
/// says why better than a did-you-mean.
static PLUGINS: std::sync::Mutex<Vec<(&'static str, String, std::path::PathBuf)>> =
    std::sync::Mutex::new(Vec::new());

/// Notes the Python filters and tests under `dir/filter_plugins` and `dir/test_plugins` (a
/// playbook's or a role's folder): the keys of the dictionaries their files return.
pub fn register_plugin_dir(dir: &std::path::Path) {
    static KEY: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(key) = KEY
        .get_or_init(|| regex::Regex::new(r#"['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*:"#).ok())
        .as_ref()
    else {
        return;
    };
    for (sub, what) in [("filter_plugins", "filter"), ("test_plugins", "test")] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("py") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(mut known) = PLUGINS.lock() else {
                return;
            };
            for c in key.captures_iter(&text) {
                let name = c[1].to_string();
                if !known.iter().any(|(w, n, _)| *w == what && *n == name) {
                    known.push((what, name, path.clone()));
                }
            }
        }
    }
}

/// The message for minijinja's "filter NAME is unknown" / "test NAME is unknown" detail, or
/// None for any other error.
pub fn message(kind: ErrorKind, detail: &str) -> Option<String> {
    let (what, table, builtin, jinja) = match kind {
        ErrorKind::UnknownFilter => ("filter", COLLECTION_FILTERS, ANSIBLE_FILTERS, JINJA_FILTERS),
        ErrorKind::UnknownTest => ("test", COLLECTION_TESTS, ANSIBLE_TESTS, JINJA_TESTS),
        _ => return None,
    };
    let name = detail
        .strip_prefix(what)?
        .strip_suffix("is unknown")?
        .trim();
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() >= 3 && !name.starts_with("ansible.builtin.") {
        let collection = format!("{}.{}", parts[0], parts[1]);
        return Some(format!(
            "{what} '{name}' ({collection}) is not supported by rdeploy"
        ));
    }
    if let Some((_, collection)) = table.iter().find(|(n, _)| *n == name) {
        return Some(format!(
            "{what} '{name}' ({collection}) is not supported by rdeploy"
        ));
    }
    if let Ok(known) = PLUGINS.lock()
        && let Some((_, _, file)) = known.iter().find(|(w, n, _)| *w == what && n == name)
    {
        return Some(format!(
            "{what} '{name}' is a Python plugin ({}): not supported by rdeploy",
            file.display()
        ));
    }
    let suggestion = match name.strip_prefix("ansible.builtin.") {
        Some(short) => crate::diag::did_you_mean(short, builtin.iter().copied())
            .map(|s| format!("ansible.builtin.{s}")),
        None => crate::diag::did_you_mean(name, builtin.iter().chain(jinja).copied())
            .map(str::to_string),
    };
    Some(match suggestion {
        Some(s) => format!("unknown {what} '{name}', did you mean '{s}'?"),
        None => format!("unknown {what} '{name}'"),
    })
}

#[cfg(test)]
mod unit_tests {
    use crate::diag::{Loc, did_you_mean};
    use crate::template::{environment, json_to_value, render_str};

    fn error(src: &str) -> String {
        let env = environment();
        let ctx = json_to_value(&serde_json::json!({"data": {"a": 1}}));
        match render_str(&env, src, &ctx, &Loc::new(&"pb.yml".into(), 5, 14)) {
            Ok(s) => panic!("{src}: expected an error, got {s:?}"),
            Err(d) => d.to_string(),
        }
    }

    #[test]
    fn collection_filters_and_tests_are_named_with_their_collection() {
        let cases = [
            (
                "{{ data | json_query('a') }}",
                "pb.yml:5:14: error: filter 'json_query' (community.general) is not supported by rdeploy",
            ),
            (
                "{{ '10.0.0.1' | ipaddr }}",
                "pb.yml:5:14: error: filter 'ipaddr' (ansible.utils) is not supported by rdeploy",
            ),
            (
                "{{ data | community.general.dict_kv('k') }}",
                "pb.yml:5:14: error: filter 'community.general.dict_kv' (community.general) is not supported by rdeploy",
            ),
            (
                "{{ data | ansible.netcommon.parse_cli('x') }}",
                "pb.yml:5:14: error: filter 'ansible.netcommon.parse_cli' (ansible.netcommon) is not supported by rdeploy",
            ),
            (
                "{{ '10.0.0.1' is ansible.utils.ipv4_address }}",
                "pb.yml:5:14: error: test 'ansible.utils.ipv4_address' (ansible.utils) is not supported by rdeploy",
            ),
            (
                "{{ 'x' is fqdn_valid }}",
                "pb.yml:5:14: error: test 'fqdn_valid' (community.general) is not supported by rdeploy",
            ),
        ];
        for (src, want) in cases {
            let got = error(src);
            assert!(got.starts_with(want), "{src}:\n{got}");
        }
    }

    #[test]
    fn typos_of_real_names_get_did_you_mean() {
        let cases = [
            (
                "{{ data | to_jsn }}",
                "pb.yml:5:14: error: unknown filter 'to_jsn', did you mean 'to_json'?",
            ),
            (
                "{{ data | ansible.builtin.to_jsn }}",
                "pb.yml:5:14: error: unknown filter 'ansible.builtin.to_jsn', did you mean 'ansible.builtin.to_json'?",
            ),
            (
                "{{ [1] | selectatr('x') }}",
                "pb.yml:5:14: error: unknown filter 'selectatr', did you mean 'selectattr'?",
            ),
            (
                "{{ 'x' is sucess }}",
                "pb.yml:5:14: error: unknown test 'sucess', did you mean 'success'?",
            ),
            (
                "{{ data | zzzqqq }}",
                "pb.yml:5:14: error: unknown filter 'zzzqqq'",
            ),
        ];
        for (src, want) in cases {
            let got = error(src);
            assert!(got.starts_with(want), "{src}:\n{got}");
        }
    }

    /// Every name rdeploy suggests or lists as Ansible's builtin really is registered, both
    /// as NAME and as ansible.builtin.NAME.
    #[test]
    fn every_builtin_name_is_registered_short_and_fqcn() {
        let env = environment();
        for name in super::ANSIBLE_FILTERS.iter().chain(super::JINJA_FILTERS) {
            let mut names = vec![name.to_string()];
            if super::ANSIBLE_FILTERS.contains(name) {
                names.push(format!("ansible.builtin.{name}"));
            }
            for n in names {
                let src = format!("{{{{ nope | {n} }}}}");
                let e = env.template_from_str(&src).and_then(|t| t.render(())).err();
                assert!(
                    e.is_none_or(|e| e.kind() != minijinja::ErrorKind::UnknownFilter),
                    "filter {n} is not registered"
                );
            }
        }
        for name in super::ANSIBLE_TESTS.iter().chain(super::JINJA_TESTS) {
            let mut names = vec![name.to_string()];
            if super::ANSIBLE_TESTS.contains(name) {
                names.push(format!("ansible.builtin.{name}"));
            }
            for n in names {
                let src = format!("{{{{ 1 is {n} }}}}");
                let e = env.template_from_str(&src).and_then(|t| t.render(())).err();
                assert!(
                    e.is_none_or(|e| e.kind() != minijinja::ErrorKind::UnknownTest),
                    "test {n} is not registered"
                );
            }
        }
        // No collection name shadows a filter rdeploy has.
        for (n, _) in super::COLLECTION_FILTERS {
            assert!(did_you_mean(n, [*n]).is_some());
            let src = format!("{{{{ nope | {n} }}}}");
            let e = env.template_from_str(&src).and_then(|t| t.render(())).err();
            assert!(
                e.is_some_and(|e| e.kind() == minijinja::ErrorKind::UnknownFilter),
                "{n} is registered but listed as a collection filter"
            );
        }
    }
}
