//! Table tests for Ansible's builtin filters and tests: each expression's expected value is
//! what ansible-playbook (ansible-core 2.19.14, the venv in `target/ansible-venv`, with
//! passlib for `password_hash`) printed for `debug: msg="{{ EXPR }}"` with `nl: "\n"` in the
//! play's vars, copied as JSON; an expected error is the start of the filter's message.
//! Expressions whose output depends on the machine (file system order) are left out.

use super::{environment, value_to_json};

fn eval(expr: &str) -> Result<serde_json::Value, String> {
    let env = environment();
    let ctx = minijinja::context! { nl => "\n" };
    let e = env.compile_expression(expr).map_err(|e| format!("{e:#}"))?;
    let v = e.eval(ctx).map_err(|e| format!("{e:#}"))?;
    value_to_json(&v).map_err(|e| format!("{e:#}"))
}

fn check(cases: &[(&str, Result<&str, &str>)]) {
    let mut bad = Vec::new();
    for (expr, want) in cases {
        let got = eval(expr);
        let ok = match (want, &got) {
            (Ok(w), Ok(g)) => serde_json::from_str::<serde_json::Value>(w).ok().as_ref() == Some(g),
            (Err(w), Err(g)) => g.contains(w),
            _ => false,
        };
        if !ok {
            bad.push(format!("{expr}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ from ansible-playbook:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

/// rdeploy decrypts inline `!vault` values when it loads them, so it cannot answer as
/// Ansible does (true for a value loaded with the tag): the test is refused, never guessed.
#[test]
fn vault_encrypted_is_refused_not_guessed() {
    for expr in [
        "'x' is vault_encrypted",
        "'x' is ansible.builtin.vault_encrypted",
    ] {
        let e = eval(expr).expect_err(expr);
        assert!(
            e.contains("'vault_encrypted' test is not supported by rdeploy"),
            "{e}"
        );
    }
}

#[test]
fn filters_and_tests_match_ansible_playbook() {
    check(CASES);
}

const CASES: &[(&str, Result<&str, &str>)] = &[
    ("'x' | ansible.builtin.default('y')", Ok(r##""x""##)),
    (
        "[1,2] | ansible.builtin.map('string') | list",
        Ok(r##"["1", "2"]"##),
    ),
    ("'a' is ansible.builtin.defined", Ok(r##"true"##)),
    (
        "{'a': 1} | ansible.builtin.to_json",
        Ok(r##""{\"a\": 1}""##),
    ),
    (
        "'abc' | ansible.builtin.regex_replace('b', 'X')",
        Ok(r##""aXc""##),
    ),
    ("'a,b' | ansible.builtin.split(',')", Ok(r##"["a", "b"]"##)),
    ("[3,1,3] | ansible.builtin.unique", Ok(r##"[3, 1]"##)),
    ("1024 | human_readable", Ok(r##""1.00 KB""##)),
    (
        "1234567 | human_readable(isbits=True)",
        Ok(r##""1.18 Mb""##),
    ),
    ("1234567 | human_readable(unit='M')", Ok(r##""1.18 MB""##)),
    ("0 | human_readable", Ok(r##""0.00 Bytes""##)),
    ("512 | human_readable(unit='G')", Ok(r##""0.00 GB""##)),
    ("1.5 | human_readable", Ok(r##""1.50 Bytes""##)),
    ("'1.5 KB' | human_to_bytes", Ok(r##"1536"##)),
    ("'10 Mb' | human_to_bytes(isbits=True)", Ok(r##"10485760"##)),
    ("'2K' | human_to_bytes", Ok(r##"2048"##)),
    ("'1MB' | human_to_bytes", Ok(r##"1048576"##)),
    ("'1 megabyte' | human_to_bytes", Ok(r##"1048576"##)),
    ("'100' | human_to_bytes", Ok(r##"100"##)),
    ("10 | human_to_bytes('M')", Ok(r##"10485760"##)),
    ("'2.5' | human_to_bytes", Ok(r##"2"##)),
    (
        "'1Mb' | human_to_bytes",
        Err("human_to_bytes() can't interpret the input: human_to_bytes() failed to"),
    ),
    (
        "'1 XB' | human_to_bytes",
        Err("human_to_bytes() can't interpret the input: human_to_bytes() failed to"),
    ),
    (
        "'foo' | human_to_bytes",
        Err("human_to_bytes() can't interpret the input: human_to_bytes() can't int"),
    ),
    (
        "'somestring' | to_uuid",
        Ok(r##""120186c2-cac8-506e-b3d6-86e0971dbd4d""##),
    ),
    (
        "'somestring' | to_uuid(namespace='11111111-2222-3333-4444-555555555555')",
        Ok(r##""70f4d7d3-c755-5824-9ad2-66fe90659275""##),
    ),
    (
        "'x' | to_uuid(namespace='bad')",
        Err("Invalid value 'bad' for 'namespace': badly formed hexadecimal UUID str"),
    ),
    ("10 | random(seed='abc')", Ok(r##"8"##)),
    (
        "['a','b','c','d','e'] | shuffle(seed='abc')",
        Ok(r##"["a", "b", "c", "d", "e"]"##),
    ),
    (
        "['a','b','c','d','e','f','g','h'] | shuffle(seed='myhost')",
        Ok(r##"["a", "c", "h", "g", "e", "d", "b", "f"]"##),
    ),
    (
        "[1,2,3,4,5,6,7,8,9,10] | shuffle(seed=42)",
        Ok(r##"[8, 4, 3, 9, 6, 7, 10, 5, 1, 2]"##),
    ),
    ("['a','b','c','d','e'] | random(seed='x')", Ok(r##""c""##)),
    ("100 | random(start=5, step=3, seed='s')", Ok(r##"95"##)),
    ("60 | random(seed='web01')", Ok(r##"22"##)),
    (
        "1000000000000 | random(seed='big')",
        Ok(r##"608018280422"##),
    ),
    ("'abcdef' | random(seed=7)", Ok(r##""c""##)),
    (
        "0 | random(seed='a')",
        Err("empty range for randrange() (0, 0, 0)"),
    ),
    (
        "[] | random(seed='a')",
        Err("Cannot choose from an empty sequence"),
    ),
    (
        "['a'] | random(start=1)",
        Err("start and step can only be used with integer values"),
    ),
    (
        "5 | random(start=10, seed='a')",
        Err("empty range for randrange() (10, 5, -5)"),
    ),
    ("'hello' | comment", Ok(r##""#\n# hello\n#""##)),
    (
        "('a' ~ nl ~ 'b') | comment('c')",
        Ok(r##""//\n// a\n// b\n//""##),
    ),
    (
        "'hello' | comment('erlang', decoration='! ')",
        Ok(r##""!\n! hello\n!""##),
    ),
    (
        "'hi' | comment(prefix='/*', postfix='*/', decoration=' * ')",
        Ok(r##""/*\n * hi\n*/""##),
    ),
    (
        "('one' ~ nl ~ 'two') | comment('cblock')",
        Ok(r##""/*\n *\n * one\n * two\n *\n */""##),
    ),
    (
        "('one' ~ nl ~ 'two') | comment('xml')",
        Ok(r##""<!--\n -\n - one\n - two\n -\n-->""##),
    ),
    (
        "('one' ~ nl ~ nl ~ 'two') | comment('plain', prefix_count=2, postfix_count=0)",
        Ok(r##""#\n#\n# one\n#\n# two""##),
    ),
    ("'x' | comment('nope')", Err("Invalid style 'nope'.")),
    ("1 | type_debug", Ok(r##""int""##)),
    ("'a' | type_debug", Ok(r##""str""##)),
    ("{} | type_debug", Ok(r##""dict""##)),
    ("[1.5] | type_debug", Ok(r##""list""##)),
    ("1.5 | type_debug", Ok(r##""float""##)),
    ("true | type_debug", Ok(r##""bool""##)),
    ("none | type_debug", Ok(r##""NoneType""##)),
    ("['a','b'] | path_join", Ok(r##""a/b""##)),
    (
        "['/etc', 'app', 'conf.d'] | path_join",
        Ok(r##""/etc/app/conf.d""##),
    ),
    ("['a', '/b', 'c'] | path_join", Ok(r##""/b/c""##)),
    ("['a/', 'b'] | path_join", Ok(r##""a/b""##)),
    ("'x/y' | path_join", Ok(r##""x/y""##)),
    (
        "'/usr/local/../lib/./x//y' | normpath",
        Ok(r##""/usr/lib/x/y""##),
    ),
    ("'a/../../b' | normpath", Ok(r##""../b""##)),
    ("'//a/b' | normpath", Ok(r##""//a/b""##)),
    ("'' | normpath", Ok(r##"".""##)),
    ("'/a/b/c' | relpath('/a/d')", Ok(r##""../b/c""##)),
    ("'/a/b' | relpath('/a/b')", Ok(r##"".""##)),
    (
        "['/usr/lib', '/usr/local/lib'] | commonpath",
        Ok(r##""/usr""##),
    ),
    ("['a/b/c', 'a/b/d'] | commonpath", Ok(r##""a/b""##)),
    (
        "['/a', 'b'] | commonpath",
        Err("Can't mix absolute and relative paths"),
    ),
    (
        "'C:/Users/me/file.txt' | win_basename",
        Ok(r##""file.txt""##),
    ),
    (
        "'C:/Users/me/file.txt' | win_dirname",
        Ok(r##""C:/Users/me""##),
    ),
    (
        "'C:/Users/me' | win_splitdrive",
        Ok(r##"["C:", "/Users/me"]"##),
    ),
    (
        "'//server/share/dir/f' | win_splitdrive",
        Ok(r##"["//server/share", "/dir/f"]"##),
    ),
    (
        "'/nonexistent/a/../b' | realpath",
        Ok(r##""/nonexistent/b""##),
    ),
    (
        "'$HOME_NOT_SET_X/a' | expandvars",
        Ok(r##""$HOME_NOT_SET_X/a""##),
    ),
    (
        "'~nosuchuserxyz/a' | expanduser",
        Ok(r##""~nosuchuserxyz/a""##),
    ),
    ("100 | log", Ok(r##"4.605170185988092"##)),
    ("100 | log(10)", Ok(r##"2.0"##)),
    ("8 | log(2)", Ok(r##"3.0"##)),
    ("0 | log", Err("math domain error")),
    ("2 | pow(10)", Ok(r##"1024.0"##)),
    ("9 | root", Ok(r##"3.0"##)),
    ("27 | root(3)", Ok(r##"3.0"##)),
    (
        "'a' | log",
        Err("log() can only be used on numbers: must be real number, not str"),
    ),
    (
        "'hello' | md5",
        Ok(r##""5d41402abc4b2a76b9719d911017c592""##),
    ),
    (
        "'hello' | sha1",
        Ok(r##""aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d""##),
    ),
    ("123 | md5", Ok(r##""202cb962ac59075b964b07152d234b70""##)),
    (
        "'hello' | hash('md5')",
        Ok(r##""5d41402abc4b2a76b9719d911017c592""##),
    ),
    ("'a%20b+c%C3%A9' | urldecode", Ok(r##""a b c\u00e9""##)),
    ("'%zz%4' | urldecode", Ok(r##""%zz%4""##)),
    (
        "'http://user:pass@Example.COM:8080/p/a?q=1&r=2#frag' | urlsplit",
        Ok(
            r##"{"fragment": "frag", "hostname": "example.com", "netloc": "user:pass@Example.COM:8080", "password": "pass", "path": "/p/a", "port": 8080, "query": "q=1&r=2", "scheme": "http", "username": "user"}"##,
        ),
    ),
    (
        "'http://example.com/x' | urlsplit('hostname')",
        Ok(r##""example.com""##),
    ),
    (
        "'https://[::1]:443/' | urlsplit",
        Ok(
            r##"{"fragment": "", "hostname": "::1", "netloc": "[::1]:443", "password": null, "path": "/", "port": 443, "query": "", "scheme": "https", "username": null}"##,
        ),
    ),
    (
        "'mailto:me@x.org' | urlsplit",
        Ok(
            r##"{"fragment": "", "hostname": null, "netloc": "", "password": null, "path": "me@x.org", "port": null, "query": "", "scheme": "mailto", "username": null}"##,
        ),
    ),
    (
        "'http://h/x' | urlsplit('nope')",
        Err("urlsplit: unknown URL component: nope"),
    ),
    (
        "'http://h:abc/' | urlsplit",
        Err("Port could not be cast to integer value as 'abc'"),
    ),
    ("1 | extract(['a','b','c'])", Ok(r##""b""##)),
    ("'k' | extract({'k': {'x': 5}}, 'x')", Ok(r##"5"##)),
    (
        "'k' | extract({'k': {'x': {'y': 6}}}, ['x', 'y'])",
        Ok(r##"6"##),
    ),
    (
        "['a','c'] | map('extract', {'a': 1, 'b': 2, 'c': 3}) | list",
        Ok(r##"[1, 3]"##),
    ),
    (
        "[{'name': 'alice', 'groups': ['wheel', 'dev']}, {'name': 'bob', 'groups': []}] | subelements('groups')",
        Ok(
            r##"[[{"groups": ["wheel", "dev"], "name": "alice"}, "wheel"], [{"groups": ["wheel", "dev"], "name": "alice"}, "dev"]]"##,
        ),
    ),
    (
        "[{'name': 'alice', 'a': {'b': [1, 2]}}] | subelements('a.b')",
        Ok(
            r##"[[{"a": {"b": [1, 2]}, "name": "alice"}, 1], [{"a": {"b": [1, 2]}, "name": "alice"}, 2]]"##,
        ),
    ),
    (
        "[{'name': 'alice'}] | subelements('groups', skip_missing=True)",
        Ok(r##"[]"##),
    ),
    (
        "[{'name': 'alice'}] | subelements('groups')",
        Err("could not find 'groups' key in iterated item {'name': 'alice'}"),
    ),
    (
        "[{'name': 'alice', 'groups': 'x'}] | subelements('groups')",
        Err("the key 'groups' should point to a list, got 'x'"),
    ),
    (
        "{'a': {'l': [1]}, 'b': {'l': [2]}} | subelements('l')",
        Ok(r##"[[{"l": [1]}, 1], [{"l": [2]}, 2]]"##),
    ),
    (
        "'x' | subelements('l')",
        Err("obj must be a list of dicts or a nested dict"),
    ),
    (
        "[1,2,3] | zip_longest(['a','b'])",
        Ok(r##"[[1, "a"], [2, "b"], [3, null]]"##),
    ),
    (
        "[1,2,3] | zip_longest(['a'], [true], fillvalue='-')",
        Ok(r##"[[1, "a", true], [2, "-", "-"], [3, "-", "-"]]"##),
    ),
    (
        "[1,2,3] | permutations",
        Ok(r##"[[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]]"##),
    ),
    (
        "[1,2,3] | permutations(2)",
        Ok(r##"[[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]"##),
    ),
    (
        "[1,2,3,4] | combinations(2)",
        Ok(r##"[[1, 2], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]]"##),
    ),
    ("[1,2,3] | combinations(0)", Ok(r##"[[]]"##)),
    ("[1,2] | combinations(3)", Ok(r##"[]"##)),
    (
        "[{'id': 'a', 'v': 1}, {'id': 'b', 'v': 2}] | rekey_on_member('id')",
        Ok(r##"{"a": {"id": "a", "v": 1}, "b": {"id": "b", "v": 2}}"##),
    ),
    (
        "{'x': {'id': 'a'}, 'y': {'id': 'b'}} | rekey_on_member('id')",
        Ok(r##"{"a": {"id": "a"}, "b": {"id": "b"}}"##),
    ),
    (
        "[{'id': 'a', 'v': 1}, {'id': 'a', 'v': 2}] | rekey_on_member('id')",
        Err("Key 'a' is not unique, cannot convert to dict."),
    ),
    (
        "[{'id': 'a', 'v': 1}, {'id': 'a', 'v': 2}] | rekey_on_member('id', duplicates='overwrite')",
        Ok(r##"{"a": {"id": "a", "v": 2}}"##),
    ),
    (
        "[{'v': 1}] | rekey_on_member('id')",
        Err("Key 'id' was not found."),
    ),
    (
        "[{'id': 'a'}] | rekey_on_member('id', duplicates='x')",
        Err("duplicates parameter to rekey_on_member has unknown value 'x'"),
    ),
    (
        "'secret' | password_hash('sha512', 'mysalt')",
        Ok(
            r##""$6$rounds=656000$mysalt$cDA0t8lm/qt.LT6DzpoHxJ.NwTpx.WTkOPwhseSva8pRixDSH2./ffedCjAMbTX1Uo1QNT7jJPJ6FIzU2i59K/""##,
        ),
    ),
    (
        "'secret' | password_hash('sha512', 'mysalt', rounds=5000)",
        Ok(
            r##""$6$mysalt$UX6P1VKOf6dr0s2pg4pLNvIUB6hLXvP6M5f/Yj9hJgMPdAJ4oArvk5YUD9/XWtk1JOpVwt/JTsczMJr8sFVML1""##,
        ),
    ),
    (
        "'secret' | password_hash('sha512', 'mysalt', rounds=10000)",
        Ok(
            r##""$6$rounds=10000$mysalt$9XTP7570fxVN/uTspSrH6kRPdR4KKGzGz7.TmJjDYGrKSwZuavW/3YaLur8JX6WP75Czcxa.megIO0lKreY0R.""##,
        ),
    ),
    (
        "'secret' | password_hash('sha256', 'mysalt', rounds=5000)",
        Ok(r##""$5$mysalt$I2SNajjJ3Gc5gIR/tkrLOGngF8wqv59buJCqxh.o9s8""##),
    ),
    (
        "'secret' | password_hash('md5', 'mysalt')",
        Ok(r##""$1$mysalt$n/EfEiV74OYgBdqhKQzSW/""##),
    ),
    (
        "'secret' | password_hash('sha512', 'toolongsaltvalue1234')",
        Err("Could not hash the secret: salt too large (sha512_crypt requires <= 16"),
    ),
    (
        "'secret' | password_hash('sha512', 'bad_salt!')",
        Err("Could not hash the secret: invalid characters in sha512_crypt salt"),
    ),
    (
        "'secret' | password_hash('sha512', 'mysalt', rounds=10)",
        Err("Could not hash the secret: sha512_crypt: min_desired_rounds (10) is to"),
    ),
    (
        "'secret' | password_hash('whirlpool')",
        Err("whirlpool is not in the list of supported passlib algorithms: md5, blo"),
    ),
    (
        "'secret' | password_hash('blowfish', '1234567890123456789012')",
        Ok(r##""$2b$12$123456789012345678901uO/yptqYYqXPYviqOvezm2C7cYzKwtUq""##),
    ),
    (
        "'secret' | password_hash('md5', 'toolongsalt')",
        Err("Could not hash the secret: salt too large (md5_crypt requires <= 8 cha"),
    ),
    (
        "'secret' | password_hash('sha512') | length",
        Ok(r##"120"##),
    ),
    ("'secret' | password_hash('md5') | length", Ok(r##"34"##)),
    (
        "'data' | vault('pw', salt='0123456789abcdef0123456789abcdef')",
        Ok(
            r##""$ANSIBLE_VAULT;1.2;AES256;filter_default\n33303331333233333334333533363337333833393631363236333634363536363330333133323333\n3334333533363337333833393631363236333634363536360a393162303930626338303433373834\n33313738343039376435643531363731353132656636363633336365643164363762646639643934\n3162663231663732300a626431303861396630393737323030666664666533666135316231353238\n6436\n""##,
        ),
    ),
    (
        "'data' | vault('pw', salt='0123456789abcdef0123456789abcdef') | unvault('pw')",
        Ok(r##""data""##),
    ),
    ("'plain' | unvault('pw')", Ok(r##""plain""##)),
    (
        "('one' ~ nl ~ nl ~ 'two') | comment(decoration='; ', end='END', beginning='BEGIN')",
        Ok(r##""BEGIN\n;\n; one\n;\n; two\n;\nEND""##),
    ),
    (
        "'x' | comment(newline='|', prefix='P', postfix='Q')",
        Ok(r##""P|# x|Q""##),
    ),
    ("'C:/' | win_dirname", Ok(r##""C:/""##)),
    ("'dir/f' | win_basename", Ok(r##""f""##)),
    ("'/a/b/' | win_basename", Ok(r##""""##)),
    (
        "{'failed': true} is ansible.builtin.failed",
        Ok(r##"true"##),
    ),
    (
        "{'failed': false} is ansible.builtin.success",
        Ok(r##"true"##),
    ),
    ("{'unreachable': true} is unreachable", Ok(r##"true"##)),
    ("{} is reachable", Ok(r##"true"##)),
    (
        "{'unreachable': true} is ansible.builtin.reachable",
        Ok(r##"false"##),
    ),
    ("{'timedout': {'period': 5}} is timedout", Ok(r##"true"##)),
    ("{'timedout': {}} is timedout", Ok(r##"false"##)),
    ("{} is timedout", Ok(r##"false"##)),
    ("{'started': 1} is started", Ok(r##"true"##)),
    ("{} is started", Ok(r##"true"##)),
    ("{'finished': 0} is finished", Ok(r##"false"##)),
    (
        "{'finished': 1} is ansible.builtin.finished",
        Ok(r##"true"##),
    ),
    (
        "'x' is finished",
        Err("The 'finished' test expects a dictionary"),
    ),
    ("[true, 1] is all", Ok(r##"true"##)),
    ("[0, ''] is any", Ok(r##"false"##)),
    ("[0, 'a'] is ansible.builtin.any", Ok(r##"true"##)),
    ("[] is all", Ok(r##"true"##)),
    ("[] is any", Ok(r##"false"##)),
    ("'/etc/hosts' is vaulted_file", Ok(r##"false"##)),
    (
        "'/nonexistent' is vaulted_file",
        Err("Cannot test if the file '/nonexistent' is a vault: [Errno 2] No such f"),
    ),
    ("'/etc' is directory", Ok(r##"true"##)),
    ("'/etc' is is_dir", Ok(r##"true"##)),
    ("'/etc/hosts' is ansible.builtin.file", Ok(r##"true"##)),
    ("'/etc' is file", Ok(r##"false"##)),
    ("'/etc/hosts' is ansible.builtin.exists", Ok(r##"true"##)),
    ("'/nonexistent' is exists", Ok(r##"false"##)),
    ("'/etc' is abs", Ok(r##"true"##)),
    ("'etc' is is_abs", Ok(r##"false"##)),
    (
        "'/etc/hosts' is same_file('/etc/../etc/hosts')",
        Ok(r##"true"##),
    ),
    (
        "'/etc/hosts' is is_same_file('/etc/hostname')",
        Ok(r##"false"##),
    ),
    ("'/' is mount", Ok(r##"true"##)),
    ("'/etc' is is_mount", Ok(r##"false"##)),
    ("'/etc/hosts' is link", Ok(r##"false"##)),
    ("'/proc/self' is link", Ok(r##"true"##)),
    (
        "'/proc/self' is ansible.builtin.link_exists",
        Ok(r##"true"##),
    ),
    ("'/nonexistent' is link_exists", Ok(r##"false"##)),
    ("[1,2] is subset([1,2,3])", Ok(r##"true"##)),
    ("[1,2] is ansible.builtin.issubset([1,3])", Ok(r##"false"##)),
    ("[1,2,3] is issuperset([2])", Ok(r##"true"##)),
    ("[1,2,3] is ansible.builtin.superset([4])", Ok(r##"false"##)),
    ("[1,2,3] is ansible.builtin.contains(2)", Ok(r##"true"##)),
    ("'nan' | float is nan", Ok(r##"true"##)),
    ("1.5 is ansible.builtin.isnan", Ok(r##"false"##)),
    ("'a' is nan", Ok(r##"false"##)),
    ("'http://x.org' is url", Ok(r##"true"##)),
    ("'foo' is uri", Ok(r##"true"##)),
    ("'urn:isbn:123' is urn", Ok(r##"true"##)),
    ("'http://x' is urn", Ok(r##"false"##)),
    ("'file:///a' is url", Ok(r##"true"##)),
    ("'mailto:a@b' is url", Ok(r##"false"##)),
    ("'x' is ansible.builtin.url", Ok(r##"false"##)),
    ("'http://x' is uri(['https'])", Ok(r##"false"##)),
    (
        "'https://x' is ansible.builtin.uri(['https'])",
        Ok(r##"true"##),
    ),
    ("'abc' is ansible.builtin.match('a')", Ok(r##"true"##)),
    ("'abc' is ansible.builtin.search('c')", Ok(r##"true"##)),
    ("'abc' is ansible.builtin.regex('^b')", Ok(r##"false"##)),
    (
        "'1.2' is ansible.builtin.version('1.1', '>')",
        Ok(r##"true"##),
    ),
    (
        "'1.2' is ansible.builtin.version_compare('1.3', 'lt')",
        Ok(r##"true"##),
    ),
    (
        "{'changed': true} is ansible.builtin.changed",
        Ok(r##"true"##),
    ),
    (
        "{'changed': true} is ansible.builtin.change",
        Ok(r##"true"##),
    ),
    (
        "{'skipped': true} is ansible.builtin.skipped",
        Ok(r##"true"##),
    ),
    ("{'skipped': true} is ansible.builtin.skip", Ok(r##"true"##)),
    (
        "{'failed': true} is ansible.builtin.failure",
        Ok(r##"true"##),
    ),
    (
        "{'failed': true} is ansible.builtin.succeeded",
        Ok(r##"false"##),
    ),
    (
        "{'failed': true} is ansible.builtin.successful",
        Ok(r##"false"##),
    ),
    ("'a' is ansible.builtin.truthy", Ok(r##"true"##)),
    ("'' is ansible.builtin.falsy", Ok(r##"true"##)),
    ("x is ansible.builtin.undefined", Ok(r##"true"##)),
    ("1 is ansible.builtin.defined", Ok(r##"true"##)),
    (
        "'dir' | b64encode(encoding='utf-16-le')",
        Ok(r##""ZABpAHIA""##),
    ),
    (
        "'h\u{e9}llo' | b64encode(encoding='utf-16')",
        Ok(r##""//5oAOkAbABsAG8A""##),
    ),
    (
        "'ZABpAHIA' | b64decode(encoding='utf-16-le')",
        Ok(r##""dir""##),
    ),
    ("'??>' | b64encode(urlsafe=True)", Ok(r##""Pz8-""##)),
    ("'Pz8-' | b64decode(urlsafe=True)", Ok(r##""??>""##)),
    ("'aGk=' | ansible.builtin.b64decode", Ok(r##""hi""##)),
    (
        "'abc' | regex_replace('b', 'X', mandatory_count=1)",
        Ok(r##""aXc""##),
    ),
    (
        "'abcb' | regex_replace('b', 'X', mandatory_count=1)",
        Err("'b' should match 1 times, but matches 0 times in 'abcb'"),
    ),
    (
        "'abcb' | regex_replace('b', 'X', count=1, mandatory_count=1)",
        Ok(r##""aXcb""##),
    ),
    (
        "[1,2] | zip_longest([3]) | first | type_debug",
        Ok(r##""tuple""##),
    ),
    (
        "[1,2] | product([3]) | first | type_debug",
        Ok(r##""tuple""##),
    ),
    ("'C:/x' | win_splitdrive | type_debug", Ok(r##""tuple""##)),
    (
        "[1,2] | permutations | first | type_debug",
        Ok(r##""tuple""##),
    ),
];
