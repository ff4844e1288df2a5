//! `io.jwt.decode`, the `io.jwt.verify_*` family and
//! `io.jwt.decode_verify`, with OPA's semantics: decoding does not verify;
//! verifying answers true or false for a well-formed token and key, and
//! fails (undefined, in OPA's default mode) on a malformed one;
//! `decode_verify` answers `[false, {}, {}]` for a token that does not pass
//! the signature, `exp`, `nbf`, `iss`, `aud` or `alg` constraints. Keys are
//! PEM certificates or public keys, or JWK(S) JSON, as OPA takes them; the
//! secret of the HMAC variants is the text itself. Signatures are checked
//! by `jsonwebtoken` (ring underneath).

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

use super::{string_arg, type_name};

/// A token split into its parts.
struct Token<'a> {
    header: Value,
    payload: Value,
    signature: Vec<u8>,
    signed: &'a str,
    signature_text: &'a str,
}

fn base64url(part: &str) -> Result<Vec<u8>> {
    let trimmed = part.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|err| anyhow!("failed to decode JWT part: {err}"))
}

fn json_part(part: &str, what: &str) -> Result<Value> {
    let bytes = base64url(part)?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("JWT {what} is not UTF-8"))?;
    let value = Value::from_json_str(text).with_context(|| format!("JWT {what} is not JSON"))?;
    if !matches!(value, Value::Object(_)) {
        bail!("JWT {what} is not a JSON object");
    }
    Ok(value)
}

fn split(token: &str) -> Result<Token<'_>> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!(
            "encoded JWT must have 3 sections, found {}",
            token.split('.').count()
        );
    };
    let header_value = json_part(header, "header")?;
    if header_value.as_object()?.contains_key(&Value::from("enc")) {
        bail!("JWT is a JWE object, which is not supported");
    }
    Ok(Token {
        header: header_value,
        payload: json_part(payload, "payload")?,
        signature: base64url(signature)?,
        signed: &token[..header.len() + 1 + payload.len()],
        signature_text: signature,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `io.jwt.decode(token)`: `[header, payload, signature as hex]`.
pub fn decode(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let token = split(string_arg("io.jwt.decode", &args[0], 1)?)?;
    Ok(Value::from(vec![
        token.header,
        token.payload,
        Value::from(hex(&token.signature)),
    ]))
}

/// The keys a `cert` argument holds: a PEM certificate or public key, a
/// JWK, or a JWK set.
fn public_keys(text: &str, algorithm: Algorithm) -> Result<Vec<DecodingKey>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text).context("invalid JWK")?;
        let jwks: Vec<Jwk> = if json.get("keys").is_some() {
            serde_json::from_value::<JwkSet>(json)
                .context("invalid JWK set")?
                .keys
        } else {
            vec![serde_json::from_value::<Jwk>(json).context("invalid JWK")?]
        };
        return jwks
            .iter()
            .map(|jwk| DecodingKey::from_jwk(jwk).map_err(|err| anyhow!("invalid JWK: {err}")))
            .collect();
    }
    let pem = text.as_bytes();
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    };
    match key {
        Ok(key) => Ok(vec![key]),
        // A key of another kind verifies nothing (false, as in OPA); text
        // that is no key at all is an error.
        Err(_)
            if DecodingKey::from_rsa_pem(pem).is_ok()
                || DecodingKey::from_ec_pem(pem).is_ok()
                || DecodingKey::from_ed_pem(pem).is_ok() =>
        {
            Ok(Vec::new())
        }
        Err(err) => Err(anyhow!("failed to parse a PEM key: {err}")),
    }
}

/// Whether the token's signature verifies with `algorithm` and one of the
/// keys (a secret for HMAC).
fn signature_verifies(token: &Token<'_>, algorithm: Algorithm, key: &KeyArg<'_>) -> Result<bool> {
    let keys = match (key, algorithm) {
        (KeyArg::Secret(secret), Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => {
            vec![DecodingKey::from_secret(secret.as_bytes())]
        }
        (KeyArg::Cert(cert), algorithm)
            if !matches!(
                algorithm,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            ) =>
        {
            public_keys(cert, algorithm)?
        }
        // A secret for a public-key algorithm, or the reverse: no match.
        _ => return Ok(false),
    };
    Ok(keys.iter().any(|key| {
        jsonwebtoken::crypto::verify(
            token.signature_text,
            token.signed.as_bytes(),
            key,
            algorithm,
        )
        .unwrap_or(false)
    }))
}

enum KeyArg<'a> {
    Secret(&'a str),
    Cert(&'a str),
}

fn verify(name: &str, algorithm: Algorithm, args: &[Value], secret: bool) -> Result<Value> {
    let token = split(string_arg(name, &args[0], 1)?)?;
    let key = string_arg(name, &args[1], 2)?;
    let key = if secret {
        KeyArg::Secret(key)
    } else {
        KeyArg::Cert(key)
    };
    Ok(Value::from(signature_verifies(&token, algorithm, &key)?))
}

macro_rules! verifiers {
    ($($fn_name:ident, $builtin:literal, $alg:expr, $secret:expr;)*) => {
        $(
            #[doc = concat!("`", $builtin, "`.")]
            pub fn $fn_name(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
                verify($builtin, $alg, args, $secret)
            }
        )*
    };
}

verifiers! {
    verify_hs256, "io.jwt.verify_hs256", Algorithm::HS256, true;
    verify_hs384, "io.jwt.verify_hs384", Algorithm::HS384, true;
    verify_hs512, "io.jwt.verify_hs512", Algorithm::HS512, true;
    verify_rs256, "io.jwt.verify_rs256", Algorithm::RS256, false;
    verify_rs384, "io.jwt.verify_rs384", Algorithm::RS384, false;
    verify_rs512, "io.jwt.verify_rs512", Algorithm::RS512, false;
    verify_ps256, "io.jwt.verify_ps256", Algorithm::PS256, false;
    verify_ps384, "io.jwt.verify_ps384", Algorithm::PS384, false;
    verify_ps512, "io.jwt.verify_ps512", Algorithm::PS512, false;
    verify_es256, "io.jwt.verify_es256", Algorithm::ES256, false;
    verify_es384, "io.jwt.verify_es384", Algorithm::ES384, false;
    verify_eddsa, "io.jwt.verify_eddsa", Algorithm::EdDSA, false;
}

fn algorithm_named(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

fn field<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.as_object().ok()?.get(&Value::from(key))
}

/// A number as a float (nanosecond times exceed 2^53, where regorus gives
/// no exact float; the nearest one is what OPA compares too).
fn seconds(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_i64().map(|i| i as f64).or_else(|| n.as_f64()),
        _ => None,
    }
}

/// `io.jwt.decode_verify(token, constraints)`: `[valid, header, payload]`,
/// `[false, {}, {}]` when a constraint does not hold.
pub fn decode_verify(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let name = "io.jwt.decode_verify";
    let token = split(string_arg(name, &args[0], 1)?)?;
    let Value::Object(constraints) = &args[1] else {
        bail!(
            "{name}: operand 2 must be object but got {}",
            type_name(&args[1])
        );
    };
    let mut key = None;
    let mut wanted_alg = None;
    let (mut iss, mut aud, mut time) = (None, None, None);
    for (k, v) in constraints.iter() {
        match (k.as_string()?.as_ref(), v) {
            ("cert", Value::String(s)) => key = Some(KeyArg::Cert(s)),
            ("secret", Value::String(s)) => key = Some(KeyArg::Secret(s)),
            ("alg", Value::String(s)) => wanted_alg = Some(s.to_string()),
            ("iss", Value::String(s)) => iss = Some(s.to_string()),
            ("aud", Value::String(s)) => aud = Some(s.to_string()),
            ("time", v) => {
                time = Some(seconds(v).ok_or_else(|| anyhow!("{name}: time must be a number"))?)
            }
            (other, _) => {
                bail!("{name}: unknown or malformed token validation constraint: {other}")
            }
        }
    }
    let key = key.ok_or_else(|| anyhow!("{name}: no key (cert or secret) given"))?;
    let invalid = || {
        Value::from(vec![
            Value::Bool(false),
            Value::new_object(),
            Value::new_object(),
        ])
    };
    let Some(header_alg) = field(&token.header, "alg").and_then(|a| a.as_string().ok()) else {
        return Ok(invalid());
    };
    if wanted_alg
        .as_deref()
        .is_some_and(|wanted| wanted != header_alg.as_ref())
    {
        return Ok(invalid());
    }
    let Some(algorithm) = algorithm_named(header_alg) else {
        return Ok(invalid());
    };
    if !signature_verifies(&token, algorithm, &key)? {
        return Ok(invalid());
    }
    // Times in nanoseconds, as OPA compares them.
    let now = match time {
        Some(ns) => ns,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|err| anyhow!("{err}"))?
            .as_nanos() as f64,
    };
    if let Some(exp) = field(&token.payload, "exp").and_then(seconds) {
        if now >= exp * 1e9 {
            return Ok(invalid());
        }
    }
    if let Some(nbf) = field(&token.payload, "nbf").and_then(seconds) {
        if now < nbf * 1e9 {
            return Ok(invalid());
        }
    }
    if let Some(iss) = iss {
        if field(&token.payload, "iss")
            .and_then(|v| v.as_string().ok())
            .map(|s| s.to_string())
            != Some(iss)
        {
            return Ok(invalid());
        }
    }
    let audience_ok = match (field(&token.payload, "aud"), aud) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(Value::String(s)), Some(want)) => s.as_ref() == want,
        (Some(Value::Array(items)), Some(want)) => items
            .iter()
            .any(|item| item.as_string().is_ok_and(|s| s.as_ref() == want)),
        (Some(_), Some(_)) => false,
    };
    if !audience_ok {
        return Ok(invalid());
    }
    Ok(Value::from(vec![
        Value::Bool(true),
        token.header,
        token.payload,
    ]))
}
