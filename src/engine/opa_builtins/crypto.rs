//! `crypto.*` hashes and HMACs: the hex digest of a string's bytes, as OPA
//! computes them; `crypto.hmac.equal` compares in constant time.

use anyhow::Result;
use hmac::{Hmac, Mac};
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;
use sha2::Digest;

use super::string_arg;

fn hex(bytes: &[u8]) -> Value {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    Value::from(out)
}

fn digest<D: Digest>(name: &str, args: &[Value]) -> Result<Value> {
    let text = string_arg(name, &args[0], 1)?;
    Ok(hex(&D::digest(text.as_bytes())))
}

fn hmac<M: Mac + hmac::digest::KeyInit>(name: &str, args: &[Value]) -> Result<Value> {
    let message = string_arg(name, &args[0], 1)?;
    let key = string_arg(name, &args[1], 2)?;
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
        .map_err(|err| anyhow::anyhow!("{name}: {err}"))?;
    mac.update(message.as_bytes());
    Ok(hex(&mac.finalize().into_bytes()))
}

/// `crypto.md5`.
pub fn md5(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    digest::<md5::Md5>("crypto.md5", args)
}

/// `crypto.sha1`.
pub fn sha1(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    digest::<sha1::Sha1>("crypto.sha1", args)
}

/// `crypto.sha256`.
pub fn sha256(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    digest::<sha2::Sha256>("crypto.sha256", args)
}

/// `crypto.sha512`.
pub fn sha512(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    digest::<sha2::Sha512>("crypto.sha512", args)
}

/// `crypto.hmac.md5`.
pub fn hmac_md5(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    hmac::<Hmac<md5::Md5>>("crypto.hmac.md5", args)
}

/// `crypto.hmac.sha1`.
pub fn hmac_sha1(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    hmac::<Hmac<sha1::Sha1>>("crypto.hmac.sha1", args)
}

/// `crypto.hmac.sha256`.
pub fn hmac_sha256(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    hmac::<Hmac<sha2::Sha256>>("crypto.hmac.sha256", args)
}

/// `crypto.hmac.sha512`.
pub fn hmac_sha512(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    hmac::<Hmac<sha2::Sha512>>("crypto.hmac.sha512", args)
}

/// `crypto.hmac.equal`: whether two MACs are equal, in constant time.
pub fn hmac_equal(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let a = string_arg("crypto.hmac.equal", &args[0], 1)?.as_bytes();
    let b = string_arg("crypto.hmac.equal", &args[1], 2)?.as_bytes();
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    Ok(Value::from(same))
}
