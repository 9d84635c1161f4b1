//! `serial` arithmetic: how a play's hosts are cut into batches, exactly as Ansible does it.
//!
//! Owns the batch sizes only. It must not know hosts, inventories or playbook syntax: the
//! playbook layer hands it validated [`BatchSize`]s and a host count.

/// One element of `serial`: a host count or a percentage of the play's hosts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchSize {
    /// `serial: 2`. Zero (or less) means "all remaining hosts".
    Count(u64),
    /// `serial: "25%"`, 0 to 100.
    Percent(f64),
}

/// The sizes of the batches for `host_count` hosts.
///
/// Ansible's rules (`PlaybookExecutor._get_serialized_batches`): an empty `serial` is one
/// batch of every host; a percentage is of all the play's hosts (after `--limit`), rounded
/// down, at least 1; a count of 0 takes every remaining host; in the list form the last
/// element repeats until the hosts run out; the last batch may be short.
pub fn batch_sizes(host_count: usize, serial: &[BatchSize]) -> Vec<usize> {
    let mut sizes = Vec::new();
    if host_count == 0 {
        return sizes;
    }
    if serial.is_empty() {
        sizes.push(host_count);
        return sizes;
    }
    let mut left = host_count;
    let mut i = 0;
    while left > 0 {
        let want = match serial[i] {
            BatchSize::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            BatchSize::Percent(p) => {
                let n = (p / 100.0 * host_count as f64).floor();
                if n >= 1.0 { n as usize } else { 1 }
            }
        };
        let take = if want == 0 { left } else { want.min(left) };
        sizes.push(take);
        left -= take;
        if i + 1 < serial.len() {
            i += 1;
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::BatchSize::{Count, Percent};
    use super::*;

    #[test]
    fn serial_arithmetic_matches_ansible() {
        let cases: &[(usize, &[BatchSize], &[usize])] = &[
            (5, &[], &[5]),
            (1, &[Count(2)], &[1]),
            (5, &[Count(2)], &[2, 2, 1]),
            (5, &[Count(0)], &[5]),
            (10, &[Percent(25.0)], &[2, 2, 2, 2, 2]),
            (3, &[Percent(25.0)], &[1, 1, 1]),
            (4, &[Percent(0.0)], &[1, 1, 1, 1]),
            (4, &[Percent(100.0)], &[4]),
            (1, &[Percent(100.0)], &[1]),
            (1, &[Percent(10.0)], &[1]),
            (20, &[Count(1), Percent(25.0), Percent(100.0)], &[1, 5, 14]),
            (6, &[Count(1), Count(2), Percent(100.0)], &[1, 2, 3]),
            // A list longer than the host count stops when hosts run out.
            (2, &[Count(1), Count(1), Count(1), Count(1)], &[1, 1]),
            // The last element repeats.
            (7, &[Count(1), Count(2)], &[1, 2, 2, 2]),
            (0, &[Count(3)], &[]),
            (50, &[Count(1), Percent(10.0), Percent(100.0)], &[1, 5, 44]),
            (9, &[Count(10)], &[9]),
        ];
        for (n, serial, want) in cases {
            assert_eq!(batch_sizes(*n, serial), *want, "n={n} serial={serial:?}");
        }
    }

    #[test]
    fn batches_always_cover_every_host_once() {
        for n in 0..60 {
            for serial in [
                vec![Count(1)],
                vec![Percent(33.0)],
                vec![Count(1), Percent(10.0), Percent(50.0)],
                vec![Count(0)],
            ] {
                let sizes = batch_sizes(n, &serial);
                assert_eq!(sizes.iter().sum::<usize>(), n);
                assert!(sizes.iter().all(|&s| s > 0));
            }
        }
    }
}
