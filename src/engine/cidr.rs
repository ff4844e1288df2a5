//! CIDR builtins regorus lacks, implemented in Rust and registered as
//! extensions: `net.cidr_intersects(a, b)` and `net.cidr_merge(cidrs)`, with
//! OPA's semantics. IPv4 and IPv6; a bare address counts as a /32 or /128.

use std::collections::BTreeSet;
use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};
use regorus::Value;

/// An address family plus a network: the address as 128 bits (IPv4 in the
/// low 32) and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    v6: bool,
    addr: u128,
    prefix: u8,
}

impl Cidr {
    /// Parse `a.b.c.d/n`, `x::y/n` or a bare address. Host bits are cleared.
    pub fn parse(text: &str) -> Result<Cidr> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim()
            .parse()
            .map_err(|_| anyhow!("invalid CIDR or IP address: {text:?}"))?;
        let (v6, bits, width) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (true, u128::from(a), 128u8),
        };
        let prefix = match prefix_text {
            None => width,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= width => n,
                _ => bail!("invalid CIDR prefix length in {text:?}"),
            },
        };
        Ok(Cidr {
            v6,
            addr: bits & mask(prefix, width),
            prefix,
        })
    }

    fn width(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    /// Whether `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.v6 == other.v6
            && self.prefix <= other.prefix
            && other.addr & mask(self.prefix, self.width()) == self.addr
    }

    /// Whether the two share at least one address.
    pub fn intersects(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The sibling this block merges with into its parent, if any.
    fn sibling(&self) -> Option<Cidr> {
        if self.prefix == 0 {
            return None;
        }
        let bit = 1u128 << (self.width() - self.prefix);
        Some(Cidr {
            addr: self.addr ^ bit,
            ..*self
        })
    }

    fn parent(&self) -> Cidr {
        let prefix = self.prefix - 1;
        Cidr {
            v6: self.v6,
            addr: self.addr & mask(prefix, self.width()),
            prefix,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr: IpAddr = if self.v6 {
            IpAddr::V6(self.addr.into())
        } else {
            IpAddr::V4((self.addr as u32).into())
        };
        write!(f, "{addr}/{}", self.prefix)
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    let full: u128 = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if prefix == 0 {
        0
    } else {
        full & !((1u128 << (width - prefix)) - 1) & full
    }
}

/// The smallest set of CIDRs covering exactly the union of `blocks`.
pub fn merge(blocks: &[Cidr]) -> Vec<Cidr> {
    let mut set: BTreeSet<Cidr> = blocks.iter().copied().collect();
    loop {
        let mut changed = false;
        // Drop blocks inside other blocks.
        let all: Vec<Cidr> = set.iter().copied().collect();
        for block in &all {
            if all
                .iter()
                .any(|other| other != block && other.contains(block))
            {
                set.remove(block);
                changed = true;
            }
        }
        // Join sibling pairs into their parent.
        let all: Vec<Cidr> = set.iter().copied().collect();
        for block in &all {
            if let Some(sibling) = block.sibling() {
                if set.contains(block) && set.contains(&sibling) {
                    set.remove(block);
                    set.remove(&sibling);
                    set.insert(block.parent());
                    changed = true;
                }
            }
        }
        if !changed {
            return set.into_iter().collect();
        }
    }
}

fn cidr_arg(value: &Value, name: &str) -> Result<Cidr> {
    match value {
        Value::String(s) => Cidr::parse(s),
        other => bail!("{name}: expected a CIDR string, got {other}"),
    }
}

/// `net.cidr_intersects(a, b)`.
pub fn cidr_intersects(args: Vec<Value>) -> Result<Value> {
    let [a, b] = args.as_slice() else {
        bail!("net.cidr_intersects expects 2 arguments");
    };
    let a = cidr_arg(a, "net.cidr_intersects")?;
    let b = cidr_arg(b, "net.cidr_intersects")?;
    Ok(Value::from(a.intersects(&b)))
}

/// `net.cidr_merge(array_or_set)`: a set of merged CIDRs.
pub fn cidr_merge(args: Vec<Value>) -> Result<Value> {
    let [items] = args.as_slice() else {
        bail!("net.cidr_merge expects 1 argument");
    };
    let values: Vec<&Value> = match items {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        other => bail!("net.cidr_merge: expected an array or set, got {other}"),
    };
    let blocks = values
        .into_iter()
        .map(|v| cidr_arg(v, "net.cidr_merge"))
        .collect::<Result<Vec<_>>>()?;
    let merged: BTreeSet<Value> = merge(&blocks)
        .into_iter()
        .map(|c| Value::from(c.to_string()))
        .collect();
    Ok(Value::from(merged))
}

/// The names of the extensions [`register`] adds.
pub const EXTENSIONS: [&str; 2] = ["net.cidr_intersects", "net.cidr_merge"];

/// Register the extensions on an engine. With `strict` off (OPA's
/// default), a call with an argument that is not a CIDR is undefined.
pub fn register(engine: &mut regorus::Engine, strict: bool) -> Result<()> {
    let [intersects, merge] = EXTENSIONS;
    let lenient = move |f: fn(Vec<Value>) -> Result<Value>| {
        move |args: Vec<Value>| match f(args) {
            Err(_) if !strict && !super::strict_scope::active() => Ok(Value::Undefined),
            result => result,
        }
    };
    engine.add_extension(
        intersects.to_string(),
        2,
        Box::new(lenient(cidr_intersects)),
    )?;
    engine.add_extension(merge.to_string(), 1, Box::new(lenient(cidr_merge)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    fn merged(items: &[&str]) -> Vec<String> {
        let blocks: Vec<Cidr> = items.iter().map(|s| c(s)).collect();
        merge(&blocks).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(c("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(c("192.168.1.7").to_string(), "192.168.1.7/32");
        assert_eq!(c("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(c("::/0").to_string(), "::/0");
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("300.0.0.0/8").is_err());
        assert!(Cidr::parse("10.0.0.0/x").is_err());
        assert!(Cidr::parse("fe80::/129").is_err());
    }

    #[test]
    fn intersection_known_cases() {
        // The examples OPA documents, and their edges.
        assert!(c("192.168.0.0/16").intersects(&c("192.168.28.0/24")));
        assert!(!c("192.168.0.0/24").intersects(&c("192.168.1.0/24")));
        assert!(c("0.0.0.0/0").intersects(&c("10.0.0.1/32")));
        assert!(c("10.0.0.0/8").intersects(&c("10.255.255.255/32")));
        assert!(!c("10.0.0.0/8").intersects(&c("11.0.0.0/32")));
        assert!(c("fd00::/8").intersects(&c("fd12:3456::/32")));
        assert!(!c("fd00::/8").intersects(&c("fe80::/10")));
        // Different families never intersect, even ::/0 and 0.0.0.0/0.
        assert!(!c("::/0").intersects(&c("0.0.0.0/0")));
        assert!(c("169.254.0.0/16").intersects(&c("169.254.169.254/32")));
    }

    #[test]
    fn merge_known_cases() {
        assert_eq!(
            merged(&["192.0.128.0/24", "192.0.129.0/24"]),
            ["192.0.128.0/23"]
        );
        assert_eq!(merged(&["10.0.0.0/25", "10.0.0.128/25"]), ["10.0.0.0/24"]);
        assert_eq!(
            merged(&["10.0.0.0/8", "10.1.0.0/16", "10.2.3.4"]),
            ["10.0.0.0/8"]
        );
        assert_eq!(
            merged(&["10.0.0.0/25", "10.0.1.0/25"]),
            ["10.0.0.0/25", "10.0.1.0/25"],
            "not siblings: no merge"
        );
        assert_eq!(
            merged(&["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/25"]),
            ["10.0.0.0/24"],
            "merges cascade"
        );
        assert_eq!(
            merged(&["2001:db8::/33", "2001:db8:8000::/33"]),
            ["2001:db8::/32"]
        );
        assert_eq!(merged(&["0.0.0.0/1", "128.0.0.0/1"]), ["0.0.0.0/0"]);
        assert_eq!(
            merged(&["10.0.0.0/24", "fd00::/8"]),
            ["10.0.0.0/24", "fd00::/8"],
            "families kept apart"
        );
        assert_eq!(merged(&[]), Vec::<String>::new());
    }

    #[test]
    fn builtins_type_check_and_answer() {
        let yes =
            cidr_intersects(vec![Value::from("10.0.0.0/8"), Value::from("10.1.0.0/16")]).unwrap();
        assert_eq!(yes, Value::from(true));
        assert!(cidr_intersects(vec![Value::from(1), Value::from("10.0.0.0/8")]).is_err());
        assert!(cidr_intersects(vec![Value::from("bad"), Value::from("10.0.0.0/8")]).is_err());
        let merged = cidr_merge(vec![Value::from(vec![
            Value::from("10.0.0.0/25"),
            Value::from("10.0.0.128/25"),
        ])])
        .unwrap();
        assert_eq!(
            merged,
            Value::from(BTreeSet::from([Value::from("10.0.0.0/24")]))
        );
        assert!(cidr_merge(vec![Value::from("10.0.0.0/8")]).is_err());
    }

    #[test]
    fn rego_can_call_them() {
        let mut engine = regorus::Engine::new();
        register(&mut engine, true).unwrap();
        engine
            .add_policy(
                "t.rego".into(),
                "package t\nx := net.cidr_intersects(\"10.0.0.0/8\", \"10.2.0.0/16\")\ny := net.cidr_merge([\"10.0.0.0/25\", \"10.0.0.128/25\"])\n".into(),
            )
            .unwrap();
        assert_eq!(
            engine.eval_rule("data.t.x".into()).unwrap(),
            Value::from(true)
        );
        assert_eq!(
            engine.eval_rule("data.t.y".into()).unwrap(),
            Value::from(BTreeSet::from([Value::from("10.0.0.0/24")]))
        );
    }
}
