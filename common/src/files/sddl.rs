//! Reading a Windows security descriptor in SDDL form: who owns an object
//! and who besides SYSTEM, Administrators and TrustedInstaller may change
//! it. Plain text parsing, so it is tested on every platform; the Windows
//! ACL code (`windows_acl.rs`) feeds it what the security API returns.

/// Trustees allowed to own or change what the agent runs as LocalSystem:
/// SYSTEM, Administrators (alias and SID) and TrustedInstaller, which owns
/// Windows' own programs.
const TRUSTED: [&str; 5] = [
    "SY",
    "BA",
    "S-1-5-18",
    "S-1-5-32-544",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
];

/// Access bits that let a trustee change a file or what a directory holds:
/// write/append data (add file/subdirectory), delete child, DELETE,
/// WRITE_DAC, WRITE_OWNER, GENERIC_ALL, GENERIC_WRITE.
const WRITE_BITS: u32 = 0x2 | 0x4 | 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000 | 0x4000_0000;

/// What in a descriptor lets someone untrusted change the object: an owner
/// that is not trusted (an owner may always rewrite the DACL), no DACL at
/// all, or an allow entry granting write access to anyone else. Empty when
/// only SYSTEM, Administrators and TrustedInstaller can change it.
pub fn untrusted_writers(sddl: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(owner) = owner_of(sddl)
        && !TRUSTED.contains(&owner)
    {
        found.push(format!("owner {owner}"));
    }
    let Some(dacl) = section(sddl, 'D') else {
        found.push("everyone (no DACL)".to_string());
        return found;
    };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        found.push("everyone (no DACL)".to_string());
        return found;
    }
    for ace in dacl.split('(').skip(1).filter_map(|ace| ace.split(')').next()) {
        let fields: Vec<&str> = ace.split(';').collect();
        let kind = fields.first().copied().unwrap_or_default();
        let flags = fields.get(1).copied().unwrap_or_default();
        let rights = fields.get(2).copied().unwrap_or_default();
        let trustee = fields.get(5).copied().unwrap_or_default();
        // Inherit-only entries apply to what is created inside, not here.
        let inherit_only = flags.as_bytes().chunks(2).any(|flag| flag == b"IO");
        let allows = kind == "A" || kind == "OA";
        if allows && !inherit_only && !TRUSTED.contains(&trustee) && rights_mask(rights) & WRITE_BITS != 0 {
            found.push(format!("{trustee} may write"));
        }
    }
    found
}

/// The owner (`O:` part), if the descriptor names one.
fn owner_of(sddl: &str) -> Option<&str> {
    section(sddl, 'O').filter(|owner| !owner.is_empty())
}

/// The text of one `X:` part of an SDDL string, up to the next part.
fn section(sddl: &str, tag: char) -> Option<&str> {
    let bytes = sddl.as_bytes();
    let mut depth = 0usize;
    let mut start = None;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && index > 0 => {
                let letter = bytes[index - 1] as char;
                if let Some(begin) = start {
                    return Some(&sddl[begin..index - 1]);
                }
                if letter == tag {
                    start = Some(index + 1);
                }
            }
            _ => {}
        }
    }
    start.map(|begin| &sddl[begin..])
}

/// An SDDL rights field (`0x1200a9` or concatenated two-letter aliases) as
/// an access mask. An unknown alias counts as every right: refusing a
/// descriptor we cannot read is the safe side.
fn rights_mask(rights: &str) -> u32 {
    if let Some(hex) = rights.strip_prefix("0x").or_else(|| rights.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
    }
    rights
        .as_bytes()
        .chunks(2)
        .map(|alias| match alias {
            b"GA" => 0x1000_0000,
            b"GR" => 0x8000_0000,
            b"GW" => 0x4000_0000,
            b"GX" => 0x2000_0000,
            b"RC" => 0x2_0000,
            b"SD" => 0x1_0000,
            b"WD" => 0x4_0000,
            b"WO" => 0x8_0000,
            b"RP" => 0x10,
            b"WP" => 0x20,
            b"CC" => 0x1,
            b"DC" => 0x2,
            b"LC" => 0x4,
            b"SW" => 0x8,
            b"LO" => 0x80,
            b"DT" => 0x40,
            b"CR" => 0x100,
            b"FA" => 0x1F_01FF,
            b"FR" => 0x12_0089,
            b"FW" => 0x12_0116,
            b"FX" => 0x12_00A0,
            b"KA" => 0xF_003F,
            b"KR" | b"KX" => 0x2_0019,
            b"KW" => 0x2_0006,
            _ => u32::MAX,
        })
        .fold(0, |mask, bits| mask | bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_change_an_object() {
        let cases: [(&str, &[&str]); 9] = [
            // What the installer sets: nobody else.
            ("O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)", &[]),
            // Program Files as Windows ships it: users read and execute.
            (
                "O:S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464D:P(A;;FA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)(A;;0x1200a9;;;BU)(A;CIIO;GA;;;CO)",
                &[],
            ),
            // A directory a user made under ProgramData: the user owns it.
            (
                "O:S-1-5-21-1-2-3-1001D:(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-5-21-1-2-3-1001)",
                &["owner S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1001 may write"],
            ),
            // Users may add files (ProgramData's own entry).
            ("O:SYD:(A;CI;DCLCSWRPWPDTLOCR;;;BU)", &["BU may write"]),
            ("O:SYD:(A;;0x1301bf;;;AU)", &["AU may write"]),
            ("O:SYD:(A;;FR;;;WD)(D;;FA;;;AN)", &[]),
            ("O:SYD:NO_ACCESS_CONTROL", &["everyone (no DACL)"]),
            ("O:SY", &["everyone (no DACL)"]),
            ("O:SYD:(A;;ZZ;;;BU)", &["BU may write"]),
        ];
        for (sddl, expected) in cases {
            assert_eq!(untrusted_writers(sddl), expected, "{sddl}");
        }
    }

    #[test]
    fn parts_are_found_whatever_their_order() {
        assert_eq!(section("O:BAG:SYD:P(A;;FA;;;SY)", 'O'), Some("BA"));
        assert_eq!(section("O:BAG:SYD:P(A;;FA;;;SY)", 'D'), Some("P(A;;FA;;;SY)"));
        assert_eq!(section("D:(A;;FA;;;SY)S:(AU;;FA;;;WD)", 'D'), Some("(A;;FA;;;SY)"));
        assert_eq!(section("D:(A;;FA;;;SY)", 'O'), None);
    }
}
