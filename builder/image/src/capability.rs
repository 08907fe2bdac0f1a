//! File capabilities: the text form `setcap` takes (libcap's
//! `cap_from_text`: `cap_net_raw+ep`, `cap_a,cap_b=eip`, `=ep`), and the
//! `security.capability` extended attribute the kernel reads (struct
//! vfs_cap_data, revision 2, little-endian).

use std::fmt;

/// The xattr that holds a file's capabilities.
pub const XATTR: &str = "security.capability";

/// Capability names by number, as in linux/capability.h.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

const ALL: u64 = (1 << NAMES.len()) - 1;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;
const REVISION_MASK: u32 = 0xff00_0000;
const FLAG_EFFECTIVE: u32 = 0x1;

/// A file's capability sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCaps {
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Whether the permitted (and inheritable) ones are raised into the
    /// effective set at exec: file capabilities have one effective bit.
    pub effective: bool,
}

impl FileCaps {
    /// Parses `setcap`'s text form.
    pub fn parse(text: &str) -> Result<FileCaps, String> {
        let mut effective = 0u64;
        let mut permitted = 0u64;
        let mut inheritable = 0u64;
        let clauses: Vec<&str> = text.split_whitespace().collect();
        if clauses.is_empty() {
            return Err("empty capability text".to_owned());
        }
        for clause in clauses {
            let at = clause
                .find(['=', '+', '-'])
                .ok_or_else(|| format!("{clause:?}: no operator (=, + or -)"))?;
            let (names, mut rest) = clause.split_at(at);
            let caps = if names.is_empty() || names.eq_ignore_ascii_case("all") {
                if names.is_empty() && !rest.starts_with('=') {
                    return Err(format!("{clause:?}: no capability named"));
                }
                ALL
            } else {
                names.split(',').try_fold(0u64, |set, name| {
                    bit(name)
                        .map(|b| set | (1 << b))
                        .ok_or_else(|| format!("unknown capability {name:?}"))
                })?
            };
            while let Some(op) = rest.chars().next() {
                let flags_end = rest[1..]
                    .find(['=', '+', '-'])
                    .map_or(rest.len(), |i| i + 1);
                let flags = &rest[1..flags_end];
                if op == '=' {
                    effective &= !caps;
                    permitted &= !caps;
                    inheritable &= !caps;
                }
                if op != '=' && flags.is_empty() {
                    return Err(format!("{clause:?}: {op} needs flags (e, i, p)"));
                }
                for flag in flags.chars() {
                    let set = match flag {
                        'e' => &mut effective,
                        'p' => &mut permitted,
                        'i' => &mut inheritable,
                        other => return Err(format!("{clause:?}: unknown flag {other:?}")),
                    };
                    if op == '-' {
                        *set &= !caps;
                    } else {
                        *set |= caps;
                    }
                }
                rest = &rest[flags_end..];
            }
        }
        let raised = permitted | inheritable;
        if effective != 0 && effective != raised {
            return Err(format!(
                "{text:?}: a file has one effective bit, so the effective set must be empty or equal to permitted and inheritable together"
            ));
        }
        Ok(FileCaps {
            permitted,
            inheritable,
            effective: effective != 0,
        })
    }

    /// Whether no capability is set at all.
    pub fn is_empty(&self) -> bool {
        self.permitted == 0 && self.inheritable == 0
    }

    /// The `security.capability` value (vfs_cap_data revision 2).
    pub fn to_xattr(&self) -> Vec<u8> {
        let magic = REVISION_2 | if self.effective { FLAG_EFFECTIVE } else { 0 };
        let mut out = Vec::with_capacity(20);
        out.extend_from_slice(&magic.to_le_bytes());
        for half in [0, 32] {
            out.extend_from_slice(&((self.permitted >> half) as u32).to_le_bytes());
            out.extend_from_slice(&((self.inheritable >> half) as u32).to_le_bytes());
        }
        out
    }

    /// Reads a `security.capability` value (revision 2, or 3 with a root
    /// id, which is ignored here).
    pub fn from_xattr(bytes: &[u8]) -> Result<FileCaps, String> {
        let word = |i: usize| {
            bytes
                .get(i * 4..i * 4 + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        let magic = word(0).ok_or("too short")?;
        let expected = match magic & REVISION_MASK {
            REVISION_2 => 20,
            REVISION_3 => 24,
            other => return Err(format!("unknown revision {other:#x}")),
        };
        if bytes.len() != expected || magic & !REVISION_MASK & !FLAG_EFFECTIVE != 0 {
            return Err(format!("{} bytes, flags {magic:#x}", bytes.len()));
        }
        let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
        Ok(FileCaps {
            permitted: join(word(1).expect("len"), word(3).expect("len")),
            inheritable: join(word(2).expect("len"), word(4).expect("len")),
            effective: magic & FLAG_EFFECTIVE != 0,
        })
    }
}

fn bit(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_")?;
    NAMES.iter().position(|n| *n == bare)
}

/// The text form, capabilities grouped by flags, e.g. `cap_net_raw=ep`.
impl fmt::Display for FileCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for (index, name) in NAMES.iter().enumerate() {
            let mask = 1u64 << index;
            let mut flags = String::new();
            if self.effective && (self.permitted | self.inheritable) & mask != 0 {
                flags.push('e');
            }
            if self.inheritable & mask != 0 {
                flags.push('i');
            }
            if self.permitted & mask != 0 {
                flags.push('p');
            }
            if flags.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(f, _)| *f == flags) {
                Some((_, names)) => names.push(name),
                None => groups.push((flags, vec![name])),
            }
        }
        let text: Vec<String> = groups
            .into_iter()
            .map(|(flags, names)| {
                let names: Vec<String> = names.iter().map(|n| format!("cap_{n}")).collect();
                format!("{}={flags}", names.join(","))
            })
            .collect();
        f.write_str(&text.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setcap_text_to_the_kernel_s_bytes_and_back() {
        let ping = FileCaps::parse("cap_net_raw+ep").unwrap();
        assert_eq!(ping.permitted, 1 << 13);
        assert!(ping.effective);
        // What `setcap cap_net_raw+ep` writes (getfattr -e hex:
        // 0x0100000200200000000000000000000000000000).
        assert_eq!(
            hex::encode(ping.to_xattr()),
            "0100000200200000000000000000000000000000"
        );
        assert_eq!(FileCaps::from_xattr(&ping.to_xattr()).unwrap(), ping);
        assert_eq!(ping.to_string(), "cap_net_raw=ep");

        let two = FileCaps::parse("cap_net_admin,cap_net_raw=p cap_bpf+ip").unwrap();
        assert_eq!(two.permitted, (1 << 12) | (1 << 13) | (1 << 39));
        assert_eq!(two.inheritable, 1 << 39);
        assert!(!two.effective);
        assert_eq!(FileCaps::from_xattr(&two.to_xattr()).unwrap(), two);
        assert_eq!(two.to_string(), "cap_net_admin,cap_net_raw=p cap_bpf=ip");
        assert_eq!(FileCaps::parse("=ep").unwrap().permitted, ALL);
        assert!(
            FileCaps::parse("cap_net_raw=ep cap_net_raw-ep")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_capability_text_is_refused() {
        for bad in [
            "",
            "cap_net_raw",
            "cap_nope+ep",
            "cap_net_raw+x",
            "net_raw+ep",
            "cap_net_raw+",
            "cap_net_raw=p cap_bpf=ep",
        ] {
            assert!(FileCaps::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FileCaps::from_xattr(&[1, 2, 3]).is_err());
        assert!(FileCaps::from_xattr(&[0; 20]).is_err());
    }
}
