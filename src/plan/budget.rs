//! Disruption budgets: batches packed so that no more than a budget of hosts is out at once,
//! for the whole play and per group or per value of a host variable.
//!
//! Owns the packing only, as [`super::serial`] and [`super::canary`] own theirs: it must not
//! know inventories or playbook syntax. The caller says, per host and per limit, which bucket
//! the host counts in (`None`: that limit does not count it).

/// Cuts `batch` (in order) into batches of at most `fleet` hosts in which no bucket of limit
/// `i` holds more than `maxes[i]` hosts. `buckets[h][i]` is host `h`'s bucket for limit `i`.
/// Greedy and order-keeping: each new batch takes, in order, every remaining host that still
/// fits; a host alone always fits (every limit is at least 1).
pub fn pack(
    batch: &[String],
    fleet: usize,
    maxes: &[usize],
    buckets: &dyn Fn(&str) -> Vec<Option<String>>,
) -> Vec<Vec<String>> {
    let fleet = fleet.max(1);
    let labels: Vec<Vec<Option<String>>> = batch.iter().map(|h| buckets(h)).collect();
    let mut left: Vec<usize> = (0..batch.len()).collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let mut taken: Vec<usize> = Vec::new();
        let mut counts: Vec<std::collections::HashMap<&str, usize>> =
            vec![std::collections::HashMap::new(); maxes.len()];
        let mut rest = Vec::new();
        for &h in &left {
            let fits = taken.len() < fleet
                && labels[h].iter().enumerate().all(|(i, b)| match b {
                    Some(b) => counts[i].get(b.as_str()).copied().unwrap_or(0) < maxes[i].max(1),
                    None => true,
                });
            if fits {
                for (i, b) in labels[h].iter().enumerate() {
                    if let Some(b) = b {
                        *counts[i].entry(b.as_str()).or_insert(0) += 1;
                    }
                }
                taken.push(h);
            } else {
                rest.push(h);
            }
        }
        out.push(taken.iter().map(|&h| batch[h].clone()).collect());
        left = rest;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn the_fleet_budget_alone_cuts_in_order() {
        let b = pack(&names(5), 2, &[], &|_| Vec::new());
        assert_eq!(b, [vec!["h1", "h2"], vec!["h3", "h4"], vec!["h5"]]);
    }

    #[test]
    fn one_per_rack_and_one_per_pool_at_every_moment() {
        // rack: h1 h2 in r1, h3 h4 in r2; pool: h1 h3 in a, h2 h4 in b; h5 has neither.
        let rack = |h: &str| match h {
            "h1" | "h2" => Some("r1".to_string()),
            "h3" | "h4" => Some("r2".to_string()),
            _ => None,
        };
        let pool = |h: &str| match h {
            "h1" | "h3" => Some("a".to_string()),
            "h2" | "h4" => Some("b".to_string()),
            _ => None,
        };
        let b = pack(&names(5), 10, &[1, 1], &|h| vec![rack(h), pool(h)]);
        assert_eq!(b, [vec!["h1", "h4", "h5"], vec!["h2", "h3"]]);
        for batch in &b {
            for f in [rack, pool] {
                let mut seen: Vec<String> = batch.iter().filter_map(|h| f(h)).collect();
                let n = seen.len();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), n, "{batch:?}");
            }
        }
    }

    #[test]
    fn a_group_limit_counts_its_members_only() {
        let db = |h: &str| (h == "h1" || h == "h2" || h == "h3").then(|| "db".to_string());
        let b = pack(&names(4), 3, &[2], &|h| vec![db(h)]);
        assert_eq!(b, [vec!["h1", "h2", "h4"], vec!["h3"]]);
    }
}
