//! `canary` arithmetic: a plan of cumulative shares of a play's hosts cut into batches.
//!
//! Owns the batch sizes only, as [`super::serial`] does: it must not know hosts, inventories
//! or playbook syntax. Unlike `serial` (Ansible's batch sizes), each step is how many of the
//! play's hosts run the new version once the step is done.

/// One step of a canary plan, cumulative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Share {
    /// `canary: [1, 3]`: this many hosts in all (more than the play has means all of them).
    Count(u64),
    /// `canary: ["25%"]`: this share of the play's hosts, rounded up.
    Percent(f64),
}

/// One batch of a canary plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    /// Hosts this step adds (its batch size), at least one.
    pub size: usize,
    /// Hosts on the new version once the step is done.
    pub cumulative: usize,
    /// The step as written (`"25%"`, `3`), or `"100%"` for the final step rdeploy adds.
    pub written: String,
    /// The written steps merged into this one because they added no host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
    /// True for the final step added because the plan did not end at all hosts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub added: bool,
    /// The 0-based indexes of the written steps this batch stands for (merged ones first):
    /// their gates run after it.
    #[serde(skip)]
    pub indexes: Vec<usize>,
}

impl Step {
    /// The share of the play's hosts on the new version after this step, as a percentage.
    pub fn share(&self, host_count: usize) -> f64 {
        if host_count == 0 {
            return 0.0;
        }
        self.cumulative as f64 * 100.0 / host_count as f64
    }
}

fn written(s: Share) -> String {
    match s {
        Share::Count(n) => n.to_string(),
        Share::Percent(p) => format!("{p}%"),
    }
}

/// The steps for `host_count` hosts: step k reaches ceil(share_k × N) hosts (a count is
/// capped at N); a step that adds no host is merged into the next one; the last step is
/// always every host (one is added when the plan does not end there).
pub fn steps(host_count: usize, plan: &[Share]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    if host_count == 0 {
        return out;
    }
    let mut reached = 0usize;
    let mut pending: Vec<String> = Vec::new();
    let mut pending_at: Vec<usize> = Vec::new();
    for (i, &s) in plan.iter().enumerate() {
        let target = match s {
            Share::Count(n) => usize::try_from(n).unwrap_or(usize::MAX).min(host_count),
            Share::Percent(p) => {
                // The epsilon keeps float noise from adding a host: 7% of 100 is 7.
                let t = (p * host_count as f64 / 100.0 - 1e-9).ceil();
                (t.max(0.0) as usize).min(host_count)
            }
        };
        pending_at.push(i);
        if target <= reached {
            pending.push(written(s));
            continue;
        }
        out.push(Step {
            size: target - reached,
            cumulative: target,
            written: written(s),
            merged: std::mem::take(&mut pending),
            added: false,
            indexes: std::mem::take(&mut pending_at),
        });
        reached = target;
    }
    if reached < host_count {
        out.push(Step {
            size: host_count - reached,
            cumulative: host_count,
            written: "100%".into(),
            merged: std::mem::take(&mut pending),
            added: true,
            indexes: pending_at,
        });
    } else if let Some(last) = out.last_mut() {
        // Steps after every host was reached add nothing: they end with the last step.
        last.merged.append(&mut pending);
        last.indexes.append(&mut pending_at);
    }
    out
}

/// What `rdeploy plan` says about a step beyond its hosts: merged steps and an added end.
pub fn note(step: &Step, host_count: usize) -> Option<String> {
    let mut parts = Vec::new();
    if !step.merged.is_empty() {
        parts.push(format!(
            "{} merged in: {} add{} no host on {host_count} host{}",
            step.merged.join(", "),
            if step.merged.len() == 1 { "it" } else { "they" },
            if step.merged.len() == 1 { "s" } else { "" },
            if host_count == 1 { "" } else { "s" },
        ));
    }
    if step.added {
        parts.push("added: the plan does not end at 100%".into());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::Share::{Count, Percent};
    use super::*;

    fn sizes(n: usize, plan: &[Share]) -> Vec<usize> {
        steps(n, plan).iter().map(|s| s.size).collect()
    }

    #[test]
    fn canary_arithmetic() {
        let std = [Percent(5.0), Percent(25.0), Percent(50.0), Percent(100.0)];
        let cases: &[(usize, &[Share], &[usize])] = &[
            // 4 hosts: 5% → 1, 25% → 1 (adds none: merged into 50%), 50% → 2, 100% → 4.
            (4, &std, &[1, 1, 2]),
            (20, &std, &[1, 4, 5, 10]),
            (100, &std, &[5, 20, 25, 50]),
            (1, &std, &[1]),
            (2, &std, &[1, 1]),
            (
                5,
                &[Percent(20.0), Percent(60.0), Percent(100.0)],
                &[1, 2, 2],
            ),
            (3, &[Percent(34.0)], &[2, 1]),
            (10, &[Count(1), Count(3)], &[1, 2, 7]),
            (10, &[Count(1), Percent(50.0)], &[1, 4, 5]),
            // A count beyond the hosts is all of them; what follows adds nothing.
            (3, &[Count(1), Count(5), Percent(100.0)], &[1, 2]),
            (0, &std, &[]),
            (100, &[Percent(7.0)], &[7, 93]),
            (10, &[Count(4), Percent(10.0), Percent(100.0)], &[4, 6]),
        ];
        for (n, plan, want) in cases {
            assert_eq!(sizes(*n, plan), *want, "n={n} plan={plan:?}");
        }
    }

    #[test]
    fn merged_and_added_steps_are_explained() {
        let s = steps(
            4,
            &[Percent(5.0), Percent(25.0), Percent(50.0), Percent(100.0)],
        );
        assert_eq!(s[1].written, "50%");
        assert_eq!(s[1].merged, ["25%"]);
        assert_eq!(
            note(&s[1], 4).as_deref(),
            Some("25% merged in: it adds no host on 4 hosts")
        );
        let cum: Vec<usize> = s.iter().map(|s| s.cumulative).collect();
        assert_eq!(cum, [1, 2, 4]);
        let s = steps(10, &[Count(2)]);
        assert!(s[1].added);
        assert_eq!(
            note(&s[1], 10).as_deref(),
            Some("added: the plan does not end at 100%")
        );
        assert_eq!(s[1].share(10), 100.0);
    }

    #[test]
    fn steps_cover_every_host_once_and_each_adds_one() {
        for n in 0..80 {
            for plan in [
                vec![Percent(5.0), Percent(25.0), Percent(50.0), Percent(100.0)],
                vec![Percent(1.0)],
                vec![Count(1), Percent(10.0), Count(3)],
                vec![Count(200)],
            ] {
                let s = steps(n, &plan);
                assert_eq!(s.iter().map(|s| s.size).sum::<usize>(), n);
                assert!(s.iter().all(|s| s.size > 0));
                assert_eq!(s.last().map_or(0, |s| s.cumulative), n);
            }
        }
    }
}
