//! What the HTTPS metrics port negotiates: its oldest TLS version and its TLS 1.2 cipher suites.
//! They come from the flags or, on OpenShift, from the cluster's TLS security profile
//! (`spec.tlsSecurityProfile` of `apiservers.config.openshift.io/cluster`), which every component
//! serving TLS there is expected to follow. Pure: the watch that feeds it is `metrics_tls`.
//!
//! rustls serves TLS 1.2 and 1.3 only, and in TLS 1.2 only forward-secret AEAD suites. What a
//! profile asks beyond that (TLS 1.0 and 1.1, CBC, 3DES, RSA key exchange) is left out with a
//! note, so that a profile never makes the port weaker than it asks, only stricter.

use rustls::CipherSuite;
use serde::Deserialize;

use crate::serving_cert::TlsMinVersion;

/// What the metrics port negotiates. TLS 1.3's suites are always on: profiles do not configure
/// them (OpenShift's API says so of its own profiles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    pub min_version: TlsMinVersion,
    /// The TLS 1.2 suites offered; none means TLS 1.3 only.
    pub tls12_suites: Vec<CipherSuite>,
}

impl TlsPolicy {
    /// OpenShift's "Intermediate" profile, its default: TLS 1.2 and up, every AEAD suite with
    /// ECDHE. These are all the TLS 1.2 suites rustls has, so also the default elsewhere.
    pub fn intermediate() -> TlsPolicy {
        TlsPolicy {
            min_version: TlsMinVersion::Tls12,
            tls12_suites: served_tls12(INTERMEDIATE),
        }
    }

    /// Whether TLS 1.2 is served: asked for, and with a suite to agree on.
    pub fn serves_tls12(&self) -> bool {
        self.min_version == TlsMinVersion::Tls12 && !self.tls12_suites.is_empty()
    }

    /// For the logs: `TLS 1.3, and TLS 1.2 with <suites>`, or `TLS 1.3 only`.
    pub fn describe(&self) -> String {
        if self.serves_tls12() {
            let suites: Vec<String> = self.tls12_suites.iter().map(|s| format!("{s:?}")).collect();
            format!("TLS 1.3, and TLS 1.2 with {}", suites.join(" "))
        } else {
            "TLS 1.3 only".to_string()
        }
    }
}

/// A cipher as OpenShift's profiles (OpenSSL names) or Kubernetes' `--tls-cipher-suites` (IANA
/// names) may name it.
struct Cipher {
    openssl: &'static str,
    iana: &'static str,
    served: Served,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Served {
    /// A TLS 1.3 suite: always on.
    Tls13,
    /// A TLS 1.2 suite rustls has.
    Tls12(CipherSuite),
    /// Known, but not served here (CBC, 3DES, RSA key exchange).
    No,
}

const CIPHERS: &[Cipher] = &[
    cipher("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", Served::Tls13),
    cipher("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", Served::Tls13),
    cipher(
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        Served::Tls13,
    ),
    cipher(
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Served::Tls12(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ),
    cipher(
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Served::Tls12(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ),
    cipher(
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Served::Tls12(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ),
    cipher(
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Served::Tls12(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ),
    cipher(
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Served::Tls12(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    cipher(
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Served::Tls12(CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ),
    cipher(
        "ECDHE-ECDSA-AES128-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        Served::No,
    ),
    cipher(
        "ECDHE-RSA-AES128-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        Served::No,
    ),
    cipher(
        "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        Served::No,
    ),
    cipher(
        "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        Served::No,
    ),
    cipher(
        "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        Served::No,
    ),
    cipher(
        "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        Served::No,
    ),
    cipher(
        "ECDHE-RSA-DES-CBC3-SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        Served::No,
    ),
    cipher("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256", Served::No),
    cipher("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384", Served::No),
    cipher("AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256", Served::No),
    cipher("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", Served::No),
    cipher("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", Served::No),
    cipher("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Served::No),
];

const fn cipher(openssl: &'static str, iana: &'static str, served: Served) -> Cipher {
    Cipher {
        openssl,
        iana,
        served,
    }
}

fn find(name: &str) -> Option<&'static Cipher> {
    CIPHERS.iter().find(|c| c.openssl == name || c.iana == name)
}

/// The ciphers of OpenShift's profiles (openshift/api `config/v1` `TLSProfiles`), by name:
/// "Intermediate"'s, and "Old"'s, which are those followed by `OLD_ALSO`.
const INTERMEDIATE: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];
const OLD_ALSO: &[&str] = &[
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

fn served_tls12(names: &[&str]) -> Vec<CipherSuite> {
    names
        .iter()
        .filter_map(|name| match find(name)?.served {
            Served::Tls12(suite) => Some(suite),
            _ => None,
        })
        .collect()
}

/// One name of `--metrics-tls-cipher-suites`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagCipher {
    /// A TLS 1.3 suite: accepted, and always on anyway.
    Tls13,
    Tls12(CipherSuite),
}

/// Parses one name of `--metrics-tls-cipher-suites` (IANA, as Kubernetes components take them, or
/// OpenSSL): a name this server cannot serve is an error, not a suite silently dropped.
pub fn parse_flag_cipher(name: &str) -> Result<FlagCipher, String> {
    let name = name.trim();
    match find(name).map(|c| c.served) {
        Some(Served::Tls13) => Ok(FlagCipher::Tls13),
        Some(Served::Tls12(suite)) => Ok(FlagCipher::Tls12(suite)),
        Some(Served::No) => Err(format!(
            "{name} is not served here (TLS 1.2 is served with ECDHE AEAD suites only): {}",
            served_names()
        )),
        None => Err(format!("unknown cipher suite {name:?}: {}", served_names())),
    }
}

fn served_names() -> String {
    let names: Vec<&str> = CIPHERS
        .iter()
        .filter(|c| matches!(c.served, Served::Tls12(_)))
        .map(|c| c.iana)
        .collect();
    format!("one of {}", names.join(", "))
}

/// What the TLS flags set. Either one given makes the flags decide the whole policy (what is
/// left unset taking the defaults), and the cluster's profile is not followed: mixing the two
/// would serve a policy nobody wrote down.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFlags {
    pub min_version: Option<TlsMinVersion>,
    /// `None` when the flag is not given.
    pub cipher_suites: Option<Vec<FlagCipher>>,
}

impl TlsFlags {
    /// The policy the flags fix, `None` when they leave it to the cluster.
    pub fn fixed(&self) -> Option<TlsPolicy> {
        if self.min_version.is_none() && self.cipher_suites.is_none() {
            return None;
        }
        let default = TlsPolicy::intermediate();
        Some(TlsPolicy {
            min_version: self.min_version.unwrap_or(default.min_version),
            tls12_suites: match &self.cipher_suites {
                Some(named) => named
                    .iter()
                    .filter_map(|c| match c {
                        FlagCipher::Tls12(suite) => Some(*suite),
                        FlagCipher::Tls13 => None,
                    })
                    .collect(),
                None => default.tls12_suites,
            },
        })
    }
}

/// `spec.tlsSecurityProfile` of OpenShift's APIServer config (only the fields read).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct OpenShiftTlsProfile {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub custom: Option<CustomTlsProfile>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct CustomTlsProfile {
    #[serde(default)]
    pub ciphers: Option<Vec<String>>,
    #[serde(rename = "minTLSVersion", default)]
    pub min_tls_version: Option<String>,
}

/// A profile read: the policy, the profile's name for the logs, and what of it is not served
/// as asked (each a sentence for a warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub policy: TlsPolicy,
    pub profile: String,
    pub notes: Vec<String>,
}

/// The policy of an OpenShift TLS security profile; none, or one without a type, is
/// "Intermediate", as for OpenShift's own components.
pub fn from_openshift(profile: Option<&OpenShiftTlsProfile>) -> Resolved {
    let kind = profile.and_then(|p| p.kind.as_deref()).unwrap_or("");
    let mut notes = Vec::new();
    let (name, min_version, ciphers): (&str, Option<&str>, Vec<&str>) = match kind {
        "" => (
            "Intermediate (none set)",
            Some("VersionTLS12"),
            INTERMEDIATE.to_vec(),
        ),
        "Old" => ("Old", Some("VersionTLS10"), [INTERMEDIATE, OLD_ALSO].concat()),
        "Intermediate" => ("Intermediate", Some("VersionTLS12"), INTERMEDIATE.to_vec()),
        "Modern" => ("Modern", Some("VersionTLS13"), Vec::new()),
        "Custom" => match profile.and_then(|p| p.custom.as_ref()) {
            Some(custom) => (
                "Custom",
                custom.min_tls_version.as_deref(),
                custom.ciphers.iter().flatten().map(String::as_str).collect(),
            ),
            None => {
                notes.push("the Custom profile has no `custom` settings: serving Intermediate".to_string());
                (
                    "Intermediate (Custom without settings)",
                    Some("VersionTLS12"),
                    INTERMEDIATE.to_vec(),
                )
            }
        },
        other => {
            notes.push(format!(
                "unknown TLS profile type {other:?}: serving Intermediate"
            ));
            (
                "Intermediate (unknown type)",
                Some("VersionTLS12"),
                INTERMEDIATE.to_vec(),
            )
        }
    };
    let min_version = match min_version {
        Some("VersionTLS13") => TlsMinVersion::Tls13,
        Some("VersionTLS12") => TlsMinVersion::Tls12,
        Some(older @ ("VersionTLS10" | "VersionTLS11")) => {
            notes.push(format!(
                "the profile's minTLSVersion {older} is older than this server speaks: TLS 1.2 is the oldest served"
            ));
            TlsMinVersion::Tls12
        }
        Some(other) => {
            notes.push(format!(
                "unknown minTLSVersion {other:?}: TLS 1.2 is the oldest served"
            ));
            TlsMinVersion::Tls12
        }
        None => {
            notes.push("the profile sets no minTLSVersion: TLS 1.2 is the oldest served".to_string());
            TlsMinVersion::Tls12
        }
    };
    let mut tls12_suites = Vec::new();
    let mut not_served = Vec::new();
    let mut unknown = Vec::new();
    for name in &ciphers {
        match find(name).map(|c| c.served) {
            Some(Served::Tls12(suite)) if !tls12_suites.contains(&suite) => tls12_suites.push(suite),
            Some(Served::Tls12(_) | Served::Tls13) => {}
            Some(Served::No) => not_served.push(*name),
            None => unknown.push(*name),
        }
    }
    if min_version == TlsMinVersion::Tls12 {
        if !not_served.is_empty() {
            notes.push(format!(
                "not offered, as this server has no such suites (CBC, 3DES, RSA key exchange): {}",
                not_served.join(", ")
            ));
        }
        if tls12_suites.is_empty() {
            notes.push(
                "none of the profile's ciphers is a TLS 1.2 suite served here: TLS 1.3 only".to_string(),
            );
        }
    }
    if !unknown.is_empty() {
        notes.push(format!("unknown ciphers left out: {}", unknown.join(", ")));
    }
    Resolved {
        policy: TlsPolicy {
            min_version,
            tls12_suites,
        },
        profile: name.to_string(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(yaml: &str) -> OpenShiftTlsProfile {
        serde_saphyr::from_str(yaml).expect("profile")
    }

    #[test]
    fn intermediate_is_every_tls12_suite_rustls_serves_and_the_default() {
        let rustls_tls12: Vec<CipherSuite> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_none())
            .map(|s| s.suite())
            .collect();
        let intermediate = TlsPolicy::intermediate();
        assert_eq!(intermediate.tls12_suites.len(), rustls_tls12.len());
        assert!(rustls_tls12.iter().all(|s| intermediate.tls12_suites.contains(s)));
        assert_eq!(from_openshift(None).policy, intermediate);
        assert!(from_openshift(None).notes.is_empty());
        let untyped = from_openshift(Some(&profile("{}")));
        assert_eq!(untyped.policy, intermediate);
        let named = from_openshift(Some(&profile("type: Intermediate\nintermediate: {}")));
        assert_eq!((named.policy, named.notes.len()), (intermediate, 0));
    }

    #[test]
    fn modern_is_tls13_only() {
        let modern = from_openshift(Some(&profile("type: Modern\nmodern: {}")));
        assert_eq!(modern.policy.min_version, TlsMinVersion::Tls13);
        assert!(!modern.policy.serves_tls12());
        assert!(modern.notes.is_empty(), "{:?}", modern.notes);
        assert_eq!(modern.policy.describe(), "TLS 1.3 only");
    }

    #[test]
    fn old_is_served_as_intermediate_and_says_what_it_leaves_out() {
        let old = from_openshift(Some(&profile("type: Old\nold: {}")));
        assert_eq!(old.policy, TlsPolicy::intermediate());
        assert_eq!(old.notes.len(), 2, "{:?}", old.notes);
        assert!(old.notes[0].contains("VersionTLS10"), "{:?}", old.notes);
        assert!(old.notes[1].contains("DES-CBC3-SHA") && old.notes[1].contains("AES128-SHA,"));
    }

    #[test]
    fn custom_takes_its_version_and_the_served_ciphers_in_either_naming() {
        let custom = from_openshift(Some(&profile(
            "type: Custom
custom:
  minTLSVersion: VersionTLS12
  ciphers: [ECDHE-ECDSA-AES256-GCM-SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256, AES128-SHA, NO-SUCH-CIPHER]",
        )));
        assert_eq!(
            custom.policy,
            TlsPolicy {
                min_version: TlsMinVersion::Tls12,
                tls12_suites: vec![
                    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                ],
            }
        );
        assert_eq!(custom.notes.len(), 2, "{:?}", custom.notes);
        assert!(custom.notes[0].ends_with(": AES128-SHA"), "{:?}", custom.notes);
        assert!(
            custom.notes[1].ends_with(": NO-SUCH-CIPHER"),
            "{:?}",
            custom.notes
        );
        assert_eq!(
            custom.policy.describe(),
            "TLS 1.3, and TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );

        let tls13 = from_openshift(Some(&profile(
            "type: Custom\ncustom: {minTLSVersion: VersionTLS13, ciphers: [TLS_AES_128_GCM_SHA256]}",
        )));
        assert_eq!(tls13.policy.min_version, TlsMinVersion::Tls13);
        assert!(tls13.notes.is_empty(), "{:?}", tls13.notes);
    }

    #[test]
    fn a_custom_profile_without_a_tls12_suite_served_here_is_tls13_only() {
        let cbc_only = from_openshift(Some(&profile(
            "type: Custom\ncustom: {minTLSVersion: VersionTLS11, ciphers: [AES128-SHA, TLS_AES_128_GCM_SHA256]}",
        )));
        assert!(!cbc_only.policy.serves_tls12());
        assert!(
            cbc_only.notes.iter().any(|n| n.contains("TLS 1.3 only")),
            "{:?}",
            cbc_only.notes
        );
        assert!(
            cbc_only.notes.iter().any(|n| n.contains("VersionTLS11")),
            "{:?}",
            cbc_only.notes
        );
    }

    #[test]
    fn odd_profiles_fall_back_to_intermediate_with_a_note() {
        for yaml in [
            "type: Custom",
            "type: Strict",
            "type: Custom\ncustom: {ciphers: [ECDHE-RSA-AES128-GCM-SHA256]}",
        ] {
            let resolved = from_openshift(Some(&profile(yaml)));
            assert_eq!(resolved.policy.min_version, TlsMinVersion::Tls12, "{yaml}");
            assert!(resolved.policy.serves_tls12(), "{yaml}");
            assert_eq!(resolved.notes.len(), 1, "{yaml}: {:?}", resolved.notes);
        }
    }

    #[test]
    fn flag_ciphers_name_only_suites_served_here() {
        assert_eq!(
            parse_flag_cipher("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            Ok(FlagCipher::Tls12(
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            ))
        );
        assert_eq!(
            parse_flag_cipher("ECDHE-RSA-AES256-GCM-SHA384"),
            Ok(FlagCipher::Tls12(
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            ))
        );
        assert_eq!(parse_flag_cipher("TLS_AES_256_GCM_SHA384"), Ok(FlagCipher::Tls13));
        let cbc = parse_flag_cipher("TLS_RSA_WITH_AES_128_CBC_SHA").expect_err("CBC");
        assert!(
            cbc.contains("not served here") && cbc.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "{cbc}"
        );
        let unknown = parse_flag_cipher("TLS_NOPE").expect_err("unknown");
        assert!(
            unknown.starts_with("unknown cipher suite \"TLS_NOPE\""),
            "{unknown}"
        );
    }

    #[test]
    fn either_flag_fixes_the_whole_policy() {
        assert_eq!(TlsFlags::default().fixed(), None);
        let version = TlsFlags {
            min_version: Some(TlsMinVersion::Tls13),
            cipher_suites: None,
        };
        assert_eq!(
            version.fixed(),
            Some(TlsPolicy {
                min_version: TlsMinVersion::Tls13,
                ..TlsPolicy::intermediate()
            })
        );
        let suites = TlsFlags {
            min_version: None,
            cipher_suites: Some(vec![
                FlagCipher::Tls13,
                FlagCipher::Tls12(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
            ]),
        };
        assert_eq!(
            suites.fixed(),
            Some(TlsPolicy {
                min_version: TlsMinVersion::Tls12,
                tls12_suites: vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
            })
        );
        let tls13_names_only = TlsFlags {
            min_version: None,
            cipher_suites: Some(vec![FlagCipher::Tls13]),
        };
        assert!(!tls13_names_only.fixed().expect("fixed").serves_tls12());
    }
}
