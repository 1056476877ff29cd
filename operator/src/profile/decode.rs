//! A profile file decoded as the runtimes decode it: Go's `encoding/json` into the runtime-spec's
//! `LinuxSeccomp` (containerd's `seccomp.WithProfile`; CRI-O's own type has these fields, with
//! the same types). Where serde's derive would differ, Go's decoder
//! - matches a key to a field whatever its case (`DefaultAction`, `SYSCALLS`, and the four
//!   non-ASCII letters that fold to ASCII ones), and skips keys that match none;
//! - lets a later copy of a key decode over the earlier one (a list element by element, then cut
//!   to the new length);
//! - leaves a text as it was on `null`, and empties a list or an optional number;
//! - refuses the whole file for a value of the wrong type in a field it knows (a text where a
//!   list goes, a fraction or a sign on an unsigned number): the container cannot start;
//! - reads bytes that are not UTF-8 as U+FFFD instead of refusing them.
//!
//! Serde's derive refuses a repeated key, matches exact case only and fails on invalid UTF-8, so
//! each of those files used to get the wrong class. Pure: no file or Kubernetes access.

use std::fmt;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// The runtime-spec's `LinuxSeccomp`, with what the class and the runtime's checks read.
#[derive(Default)]
pub(crate) struct Profile {
    pub default_action: String,
    pub default_errno_ret: Option<u64>,
    pub architectures: Vec<String>,
    pub flags: Vec<String>,
    pub listener_path: String,
    pub listener_metadata: String,
    pub syscalls: Vec<Rule>,
}

/// A rule of `syscalls` (`LinuxSyscall`).
#[derive(Default)]
pub(crate) struct Rule {
    pub names: Vec<String>,
    pub action: String,
    pub errno_ret: Option<u64>,
    pub args: Vec<Arg>,
    /// Docker's older one-call field: no runtime-spec field, so containerd skips it whatever it
    /// holds (CRI-O reads it).
    pub docker_name: DockerName,
}

/// An argument condition of a rule (`LinuxSeccompArg`).
#[derive(Default)]
pub(crate) struct Arg {
    pub index: u64,
    pub value: u64,
    pub value_two: u64,
    pub op: String,
}

/// Decodes a whole file; trailing data other than white space is refused, as Go's `Unmarshal`
/// does.
pub(crate) fn decode(content: &[u8]) -> Result<Profile, serde_json::Error> {
    let mut profile = Profile::default();
    let mut deserializer = serde_json::Deserializer::from_slice(content);
    profile.decode(&mut deserializer)?;
    deserializer.end()?;
    Ok(profile)
}

/// A value Go's decoder fills in place: what a repeated key or `null` does depends on what is
/// already there.
pub(crate) trait GoValue: Default {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error>;
}

/// Decodes the next value into `.0`.
struct DecodeInto<'a, T>(&'a mut T);

impl<'de, T: GoValue> DeserializeSeed<'de> for DecodeInto<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.0.decode(deserializer)
    }
}

/// A Go `string`: `null` leaves it as it was.
impl GoValue for String {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        if let Some(Text(text)) = Option::<Text>::deserialize(deserializer)? {
            *self = text;
        }
        Ok(())
    }
}

/// A Go `uint64`: digits only; `null` leaves it as it was.
impl GoValue for u64 {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        if let Some(Unsigned(number)) = Option::<Unsigned>::deserialize(deserializer)? {
            *self = number;
        }
        Ok(())
    }
}

/// A Go `*uint`: `null` makes it nil.
impl GoValue for Option<u64> {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        *self = Option::<Unsigned>::deserialize(deserializer)?.map(|Unsigned(number)| number);
        Ok(())
    }
}

/// A Go slice: `null` empties it; an array decodes into the elements already there, then cuts
/// the list to its own length.
impl<T: GoValue> GoValue for Vec<T> {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct List<'a, T>(&'a mut Vec<T>);
        impl<'de, T: GoValue> Visitor<'de> for List<'_, T> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_none<E: de::Error>(self) -> Result<(), E> {
                self.0.clear();
                Ok(())
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_seq(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<(), A::Error> {
                let mut count = 0;
                loop {
                    if count == self.0.len() {
                        self.0.push(T::default());
                    }
                    if elements
                        .next_element_seed(DecodeInto(&mut self.0[count]))?
                        .is_none()
                    {
                        break;
                    }
                    count += 1;
                }
                self.0.truncate(count);
                Ok(())
            }
        }
        deserializer.deserialize_option(List(self))
    }
}

/// A JSON string as Go stores it in a `string`: bytes that are not UTF-8 become U+FFFD.
struct Text(String);

impl<'de> de::Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chars;
        impl Visitor<'_> for Chars {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text(text.to_owned()))
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Text, E> {
                Ok(Text(String::from_utf8_lossy(bytes).into_owned()))
            }
        }
        // Bytes: serde_json hands a string over without checking its UTF-8.
        deserializer.deserialize_bytes(Chars)
    }
}

/// A JSON number as Go parses an unsigned integer: no sign, fraction or exponent.
struct Unsigned(u64);

impl<'de> de::Deserialize<'de> for Unsigned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Digits;
        impl Visitor<'_> for Digits {
            type Value = Unsigned;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Unsigned, E> {
                Ok(Unsigned(number))
            }
        }
        deserializer.deserialize_u64(Digits)
    }
}

/// Docker's `name`: kept when it is a string, skipped otherwise (containerd does not read it).
#[derive(Default)]
pub(crate) struct DockerName(pub Option<String>);

impl GoValue for DockerName {
    fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        if let serde_json::Value::String(name) = serde_json::Value::deserialize(deserializer)? {
            self.0 = Some(name);
        }
        Ok(())
    }
}

/// Whether `key` names the field `name` (ASCII) for Go's decoder: equal once both are folded,
/// ASCII letters to upper case and other characters to the upper case of their lower case, which
/// makes `ſ` an `S`, the Kelvin sign a `K`, and `ı` and `İ` an `I`. A key that is not UTF-8 (read
/// with U+FFFD) matches no field.
fn names_field(key: &str, name: &str) -> bool {
    let fold = |c: char| match c {
        'ſ' => 'S',
        '\u{212A}' => 'K',
        'ı' | 'İ' => 'I',
        c => c.to_ascii_uppercase(),
    };
    key.chars()
        .map(fold)
        .eq(name.chars().map(|c| c.to_ascii_uppercase()))
}

/// A Go struct: an object decodes field by field into it (keys matched by [`names_field`],
/// unknown keys skipped), `null` leaves it as it was, anything else is refused.
macro_rules! go_struct {
    ($type:ty, $expecting:literal, { $($key:literal => $field:ident),* $(,)? }) => {
        impl GoValue for $type {
            fn decode<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
                struct Fields<'a>(&'a mut $type);
                impl<'de> Visitor<'de> for Fields<'_> {
                    type Value = ();
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                        Ok(())
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
                        while let Some(Text(key)) = entries.next_key()? {
                            $(
                                if names_field(&key, $key) {
                                    entries.next_value_seed(DecodeInto(&mut self.0.$field))?;
                                    continue;
                                }
                            )*
                            entries.next_value::<IgnoredAny>()?;
                        }
                        Ok(())
                    }
                }
                deserializer.deserialize_any(Fields(self))
            }
        }

        impl<'de> de::Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let mut value = <$type>::default();
                value.decode(deserializer)?;
                Ok(value)
            }
        }
    };
}

go_struct!(Profile, "a seccomp profile (an object)", {
    "defaultAction" => default_action,
    "defaultErrnoRet" => default_errno_ret,
    "architectures" => architectures,
    "flags" => flags,
    "listenerPath" => listener_path,
    "listenerMetadata" => listener_metadata,
    "syscalls" => syscalls,
});

go_struct!(Rule, "a rule of syscalls (an object)", {
    "names" => names,
    "action" => action,
    "errnoRet" => errno_ret,
    "args" => args,
    "name" => docker_name,
});

go_struct!(Arg, "an argument condition (an object)", {
    "index" => index,
    "value" => value,
    "valueTwo" => value_two,
    "op" => op,
});

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(content: &str) -> Profile {
        decode(content.as_bytes()).unwrap_or_else(|e| panic!("{content}: {e}"))
    }

    fn refused(content: &[u8]) -> String {
        match decode(content) {
            Ok(_) => panic!("{} decoded", String::from_utf8_lossy(content)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn keys_match_fields_whatever_their_case() {
        let profile = decoded(
            r#"{"DefaultAction":"SCMP_ACT_ALLOW","SYSCALLS":[{"Names":["mkdir"],"ACTION":"SCMP_ACT_ERRNO",
                "Args":[{"Op":"SCMP_CMP_EQ","VALUE":1}]}],"ſyscalls2":1}"#,
        );
        assert_eq!(profile.default_action, "SCMP_ACT_ALLOW");
        assert_eq!(profile.syscalls.len(), 1);
        assert_eq!(profile.syscalls[0].names, ["mkdir"]);
        assert_eq!(profile.syscalls[0].action, "SCMP_ACT_ERRNO");
        assert_eq!(profile.syscalls[0].args[0].op, "SCMP_CMP_EQ");
        assert_eq!(profile.syscalls[0].args[0].value, 1);
        // Go's folding: ſ is an s, the Kelvin sign a k, ı and İ an i.
        assert_eq!(decoded(r#"{"ſyscalls":[{}]}"#).syscalls.len(), 1);
        assert_eq!(decoded(r#"{"lİstenerPath":"a"}"#).listener_path, "a");
        assert_eq!(decoded(r#"{"lıstenerPath":"a"}"#).listener_path, "a");
        assert!(names_field("\u{212A}", "k"));
        assert!(!names_field("syscall", "syscalls"));
        assert!(!names_field("sysc\u{FFFD}alls", "syscalls"));
    }

    #[test]
    fn a_repeated_key_decodes_over_the_earlier_one() {
        let profile = decoded(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultAction":"SCMP_ACT_ALLOW","defaultAction":null,
                "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"},{"names":["ptrace"]}],
                "syscalls":[{"action":"SCMP_ACT_LOG"}]}"#,
        );
        // null leaves a text as it was.
        assert_eq!(profile.default_action, "SCMP_ACT_ALLOW");
        // The second list decodes into the first one's element, and cuts the list to one.
        assert_eq!(profile.syscalls.len(), 1);
        assert_eq!(profile.syscalls[0].names, ["mkdir", "mkdirat"]);
        assert_eq!(profile.syscalls[0].action, "SCMP_ACT_LOG");
        // null empties a list and an optional number.
        let profile =
            decoded(r#"{"syscalls":[{"names":["a"],"errnoRet":1,"errnoRet":null}],"syscalls":null}"#);
        assert!(profile.syscalls.is_empty());
        assert_eq!(
            decoded(r#"{"syscalls":[{"errnoRet":1,"errnoRet":null}]}"#).syscalls[0].errno_ret,
            None
        );
        // A null element is an empty rule.
        assert_eq!(decoded(r#"{"syscalls":[null]}"#).syscalls[0].action, "");
    }

    #[test]
    fn a_value_of_the_wrong_type_in_a_known_field_refuses_the_file() {
        for content in [
            &br#"{"architectures":"SCMP_ARCH_X86_64"}"#[..],
            br#"{"defaultAction":2}"#,
            br#"{"defaultErrnoRet":-1}"#,
            br#"{"syscalls":[{"names":["mkdir"],"errnoRet":1.0}]}"#,
            br#"{"syscalls":[{"names":["mkdir"],"errnoRet":1e2}]}"#,
            br#"{"syscalls":[{"names":"mkdir"}]}"#,
            br#"{"syscalls":[{"names":[1]}]}"#,
            br#"{"syscalls":[{"args":[{"index":"0"}]}]}"#,
            br#"{"syscalls":[{"args":[{"value":18446744073709551616}]}]}"#,
            br#"{"syscalls":["mkdir"]}"#,
            br#"{"syscalls":{}}"#,
            br#"{"flags":[true]}"#,
            br#"{"listenerMetadata":{}}"#,
            br#"["SCMP_ACT_ALLOW"]"#,
            br#""SCMP_ACT_ALLOW""#,
            br#"{} {}"#,
            b"",
        ] {
            refused(content);
        }
        assert!(refused(br#"{"syscalls":"x"}"#).contains("expected a list"));
    }

    #[test]
    fn unknown_keys_and_odd_bytes_are_read_as_go_reads_them() {
        let profile = decode(
            b"{\"comment\":\"caf\xe9\",\"x\":[1,{\"y\":null}],\"syscalls\":[{\"names\":[\"mk\xffdir\"],\"name\":7}]}",
        )
        .expect("Go skips unknown keys and replaces bytes that are not UTF-8");
        assert_eq!(profile.syscalls[0].names, ["mk\u{FFFD}dir"]);
        assert_eq!(profile.syscalls[0].docker_name.0, None);
        assert_eq!(
            decoded(r#"{"syscalls":[{"name":"mkdir"}]}"#).syscalls[0]
                .docker_name
                .0
                .as_deref(),
            Some("mkdir")
        );
        assert_eq!(decoded("null").default_action, "");
        assert_eq!(decoded(" {} \n").syscalls.len(), 0);
    }
}
