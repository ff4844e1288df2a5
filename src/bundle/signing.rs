//! OPA bundle signatures: `.signatures.json` holds a JWT whose payload lists
//! every file of the bundle with its digest. Verification checks the JWT with
//! a configured key, then every file against the list — a changed, added or
//! removed file, a wrong key or a missing signature each fail with the file
//! and the check named. Signing writes the same format.
//!
//! Digests follow OPA: data and manifest files (JSON, YAML) are hashed in a
//! canonical form (object keys sorted, numbers as written, strings encoded as
//! Go's JSON encoder does without HTML escaping); everything else byte for
//! byte.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The name of the signatures file inside a bundle.
pub const SIGNATURES_FILE: &str = ".signatures.json";

/// A signing or verification key as configured.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id (`keyid` in the signature).
    pub id: String,
    /// RS256, RS384, RS512, PS256, ES256, ES384 or HS256.
    pub algorithm: String,
    /// The key inline: a PEM public key, or the HMAC secret for HS256.
    #[serde(default)]
    pub key: Option<String>,
    /// Or a file holding it.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Bundle verification settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct VerificationSettings {
    /// The keys signatures may use.
    pub keys: Vec<KeyConfig>,
    /// The key to use, whatever the signature names (as in OPA); when
    /// unset, the signature's `kid`, then its deprecated `keyid` claim.
    #[serde(default)]
    pub keyid: Option<String>,
    /// A signature's `scope` must equal it; unset, only unscoped
    /// signatures pass (as in OPA).
    #[serde(default)]
    pub scope: Option<String>,
}

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A key could not be used.
    #[error("key {id}: {message}")]
    Key {
        /// The key id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A check on the bundle failed.
    #[error("{check} failed{}: {message}", .file.as_ref().map(|f| format!(" for {f}")).unwrap_or_default())]
    Check {
        /// Which check: "signature present", "signature", "key", "scope",
        /// "file digest", "file listed", "file present".
        check: &'static str,
        /// The file concerned, if one.
        file: Option<String>,
        /// Details.
        message: String,
    },
}

fn check(check: &'static str, file: Option<&str>, message: impl Into<String>) -> SignatureError {
    SignatureError::Check {
        check,
        file: file.map(str::to_string),
        message: message.into(),
    }
}

fn algorithm(name: &str, id: &str) -> Result<Algorithm, SignatureError> {
    match name {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "HS256" => Ok(Algorithm::HS256),
        other => Err(SignatureError::Key {
            id: id.to_string(),
            message: format!("unsupported algorithm {other}"),
        }),
    }
}

fn key_material(key: &KeyConfig) -> Result<Vec<u8>, SignatureError> {
    match (&key.key, &key.key_file) {
        (Some(inline), None) => Ok(inline.as_bytes().to_vec()),
        (None, Some(file)) => std::fs::read(file).map_err(|err| SignatureError::Key {
            id: key.id.clone(),
            message: format!("cannot read {}: {err}", file.display()),
        }),
        _ => Err(SignatureError::Key {
            id: key.id.clone(),
            message: "give exactly one of key and key_file".into(),
        }),
    }
}

/// Verification keys, ready to use.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    keyid: Option<String>,
    scope: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("keyid", &self.keyid)
            .field("scope", &self.scope)
            .finish()
    }
}

impl Verifier {
    /// Load the configured keys.
    pub fn new(settings: &VerificationSettings) -> Result<Verifier, SignatureError> {
        let mut keys = HashMap::new();
        for key in &settings.keys {
            let alg = algorithm(&key.algorithm, &key.id)?;
            let material = key_material(key)?;
            let bad = |err: jsonwebtoken::errors::Error| SignatureError::Key {
                id: key.id.clone(),
                message: err.to_string(),
            };
            let decoding = match alg {
                Algorithm::HS256 => DecodingKey::from_secret(&material),
                Algorithm::ES256 | Algorithm::ES384 => {
                    DecodingKey::from_ec_pem(&material).map_err(bad)?
                }
                _ => DecodingKey::from_rsa_pem(&material).map_err(bad)?,
            };
            keys.insert(key.id.clone(), (alg, decoding));
        }
        if keys.is_empty() {
            return Err(SignatureError::Key {
                id: String::new(),
                message: "verification needs at least one key".into(),
            });
        }
        Ok(Verifier {
            keys,
            keyid: settings.keyid.clone(),
            scope: settings.scope.clone(),
        })
    }

    /// Verify a bundle's files (path inside the bundle → contents), which
    /// include `.signatures.json` when the bundle is signed.
    pub fn verify(&self, files: &BTreeMap<String, Vec<u8>>) -> Result<(), SignatureError> {
        let signatures = files.get(SIGNATURES_FILE).ok_or_else(|| {
            check(
                "signature present",
                None,
                "the bundle is not signed (no .signatures.json)",
            )
        })?;
        let envelope: SignaturesFile = serde_json::from_slice(signatures)
            .map_err(|err| check("signature present", Some(SIGNATURES_FILE), err.to_string()))?;
        let token = match envelope.signatures.as_slice() {
            [token] => token,
            [] => {
                return Err(check(
                    "signature present",
                    Some(SIGNATURES_FILE),
                    "no signature in the file",
                ))
            }
            _ => {
                return Err(check(
                    "signature present",
                    Some(SIGNATURES_FILE),
                    "more than one signature",
                ))
            }
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| check("signature", Some(SIGNATURES_FILE), err.to_string()))?;
        let unverified = unverified_payload(token)?;
        // The key, in OPA's order: the configured keyid, the header's
        // `kid`, the payload's deprecated `keyid` claim; then, where OPA
        // would give up, the only key configured.
        let keyid = self
            .keyid
            .clone()
            .or(header.kid.clone())
            .or(unverified.keyid.clone())
            .or_else(|| {
                (self.keys.len() == 1)
                    .then(|| self.keys.keys().next().cloned())
                    .flatten()
            })
            .ok_or_else(|| {
                check(
                    "key",
                    None,
                    "the signature names no key and no default keyid is configured",
                )
            })?;
        let (alg, key) = self.keys.get(&keyid).ok_or_else(|| {
            check(
                "key",
                None,
                format!("no verification key {keyid:?} is configured"),
            )
        })?;
        if header.alg != *alg {
            return Err(check(
                "signature",
                Some(SIGNATURES_FILE),
                format!("signed with {:?}, key {keyid:?} is {:?}", header.alg, alg),
            ));
        }
        let mut validation = Validation::new(*alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let payload = jsonwebtoken::decode::<Payload>(token, key, &validation)
            .map_err(|err| {
                check(
                    "signature",
                    Some(SIGNATURES_FILE),
                    format!("{err} (key {keyid:?})"),
                )
            })?
            .claims;
        // As in OPA, the signature's scope must equal the configured one,
        // both absent included: a scoped signature needs `scope` set.
        let wanted = self.scope.as_deref().unwrap_or("");
        let signed = payload.scope.as_deref().unwrap_or("");
        if signed != wanted {
            return Err(check(
                "scope",
                None,
                format!("signature scope {signed:?} is not the configured {wanted:?}"),
            ));
        }
        let listed: BTreeMap<String, &FileDigest> = payload
            .files
            .iter()
            .map(|f| (normalize(&f.name), f))
            .collect();
        for (name, bytes) in files {
            if name == SIGNATURES_FILE {
                continue;
            }
            let entry = listed.get(name).ok_or_else(|| {
                check(
                    "file listed",
                    Some(name),
                    "the file is not in the signature (added?)",
                )
            })?;
            let digest = digest(&entry.algorithm, name, bytes)
                .map_err(|message| check("file digest", Some(name), message))?;
            if !digest.eq_ignore_ascii_case(&entry.hash) {
                return Err(check(
                    "file digest",
                    Some(name),
                    "the content does not match its signed digest (changed?)",
                ));
            }
        }
        if let Some(missing) = listed.keys().find(|name| !files.contains_key(*name)) {
            return Err(check(
                "file present",
                Some(missing),
                "a signed file is missing from the bundle (removed?)",
            ));
        }
        Ok(())
    }
}

/// Sign a bundle's files: the contents of `.signatures.json`.
pub fn sign(files: &BTreeMap<String, Vec<u8>>, key: &KeyConfig) -> Result<Vec<u8>, SignatureError> {
    let alg = algorithm(&key.algorithm, &key.id)?;
    let material = key_material(key)?;
    let bad = |err: jsonwebtoken::errors::Error| SignatureError::Key {
        id: key.id.clone(),
        message: err.to_string(),
    };
    let encoding = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(&material),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&material).map_err(bad)?,
        _ => EncodingKey::from_rsa_pem(&material).map_err(bad)?,
    };
    let mut listed = Vec::new();
    for (name, bytes) in files.iter().filter(|(n, _)| n.as_str() != SIGNATURES_FILE) {
        let hash = digest("SHA-256", name, bytes).map_err(|message| SignatureError::Key {
            id: key.id.clone(),
            message: format!("{name}: {message}"),
        })?;
        listed.push(FileDigest {
            name: name.clone(),
            hash,
            algorithm: "SHA-256".into(),
        });
    }
    let payload = Payload {
        files: listed,
        keyid: Some(key.id.clone()),
        scope: None,
    };
    let token = jsonwebtoken::encode(&Header::new(alg), &payload, &encoding).map_err(bad)?;
    serde_json::to_vec(&SignaturesFile {
        signatures: vec![token],
    })
    .map_err(|err| SignatureError::Key {
        id: key.id.clone(),
        message: err.to_string(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct SignaturesFile {
    signatures: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    files: Vec<FileDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileDigest {
    name: String,
    hash: String,
    /// Missing in a hand-made signature: as in OPA, the token still
    /// verifies, and the file it names fails its digest check.
    #[serde(default)]
    algorithm: String,
}

/// The payload read without checking the signature, only to pick the key.
fn unverified_payload(token: &str) -> Result<Payload, SignatureError> {
    let part = token
        .split('.')
        .nth(1)
        .ok_or_else(|| check("signature", Some(SIGNATURES_FILE), "not a JWT"))?;
    let bytes = base64url_decode(part).ok_or_else(|| {
        check(
            "signature",
            Some(SIGNATURES_FILE),
            "payload is not base64url",
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|err| {
        check(
            "signature",
            Some(SIGNATURES_FILE),
            format!("payload: {err}"),
        )
    })
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

fn normalize(name: &str) -> String {
    name.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// A file's digest as OPA computes it, hex-encoded.
fn digest(algorithm: &str, name: &str, bytes: &[u8]) -> Result<String, String> {
    let structured = name.ends_with(".json")
        || name == ".manifest"
        || name.ends_with(".yaml")
        || name.ends_with(".yml");
    let content = if structured {
        let canonical = if name.ends_with(".yaml") || name.ends_with(".yml") {
            let value: serde_json::Value =
                yaml_serde::from_slice(bytes).map_err(|e| e.to_string())?;
            canonical_json(&value.to_string())?
        } else {
            canonical_json(std::str::from_utf8(bytes).map_err(|e| e.to_string())?)?
        };
        canonical.into_bytes()
    } else {
        bytes.to_vec()
    };
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    // OPA's names. It also accepts MD5 and SHA-1, which are refused here:
    // a collision would let a changed file keep its signature.
    match algorithm {
        "SHA-224" => Ok(hex(&sha2::Sha224::digest(&content))),
        "SHA-256" => Ok(hex(&sha2::Sha256::digest(&content))),
        "SHA-384" => Ok(hex(&sha2::Sha384::digest(&content))),
        "SHA-512" => Ok(hex(&sha2::Sha512::digest(&content))),
        "SHA-512-224" => Ok(hex(&sha2::Sha512_224::digest(&content))),
        "SHA-512-256" => Ok(hex(&sha2::Sha512_256::digest(&content))),
        "" => Err("the signature gives no digest algorithm for the file".into()),
        "MD5" | "SHA-1" => Err(format!(
            "digest algorithm {algorithm} is too weak to trust; sign with SHA-256 or stronger"
        )),
        other => Err(format!("unsupported digest algorithm {other}")),
    }
}

/// JSON text re-encoded canonically: keys sorted, no spaces, numbers as
/// written, strings as Go's encoder writes them.
fn canonical_json(text: &str) -> Result<String, String> {
    let mut parser = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = String::with_capacity(text.len());
    parser.value(&mut out)?;
    parser.ws();
    if parser.i != parser.s.len() {
        return Err("trailing characters after the JSON document".into());
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn value(&mut self, out: &mut String) -> Result<(), String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members: Vec<(String, String)> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return Err(format!("expected ':' at byte {}", self.i));
                        }
                        self.i += 1;
                        let mut value = String::new();
                        self.value(&mut value)?;
                        members.push((key, value));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                        }
                    }
                }
                members.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                for (n, (key, value)) in members.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    encode_string(key, out);
                    out.push(':');
                    out.push_str(value);
                }
                out.push('}');
                Ok(())
            }
            Some(b'[') => {
                self.i += 1;
                out.push('[');
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    let mut first = true;
                    loop {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        self.value(out)?;
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
                        }
                    }
                }
                out.push(']');
                Ok(())
            }
            Some(b'"') => {
                let s = self.string()?;
                encode_string(&s, out);
                Ok(())
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len()
                    && !matches!(
                        self.s[self.i],
                        b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'
                    )
                {
                    self.i += 1;
                }
                let token =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                if token.is_empty() {
                    return Err(format!("expected a value at byte {start}"));
                }
                out.push_str(token);
                Ok(())
            }
            None => Err("unexpected end of JSON".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {start}"));
        }
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                    return serde_json::from_str(raw).map_err(|e| e.to_string());
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated string".into())
    }
}

/// Encode a string as Go's `encoding/json` does with HTML escaping off.
fn encode_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    fn key_file(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keys")
            .join(name)
    }

    fn rsa(id: &str, file: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            algorithm: "RS256".into(),
            key: None,
            key_file: Some(key_file(file)),
        }
    }

    fn verifier(keys: Vec<KeyConfig>) -> Verifier {
        verifier_with(keys, None, None)
    }

    fn verifier_with(keys: Vec<KeyConfig>, keyid: Option<&str>, scope: Option<&str>) -> Verifier {
        Verifier::new(&VerificationSettings {
            keys,
            keyid: keyid.map(str::to_string),
            scope: scope.map(str::to_string),
        })
        .unwrap()
    }

    fn hs256(id: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            algorithm: "HS256".into(),
            key: Some(secret.into()),
            key_file: None,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_keeps_numbers_as_written() {
        assert_eq!(
            canonical_json(r#"{ "b": [1.50, 2e3, true, null], "a": {"y": "\u00e9\n", "x": -0} }"#)
                .unwrap(),
            "{\"a\":{\"x\":-0,\"y\":\"é\\n\"},\"b\":[1.50,2e3,true,null]}"
        );
        assert_eq!(canonical_json("\"<&>\"").unwrap(), "\"<&>\"");
        assert!(canonical_json("{\"a\": 1} x").is_err());
    }

    #[test]
    fn hs256_round_trip_and_every_tampering_is_named() {
        let secret = hs256("ci", "s3cret");
        let mut bundle = files(&[
            (".manifest", r#"{"revision": "1"}"#),
            ("a/p.rego", "package a\nx := 1\n"),
            ("data.json", r#"{"k": 1}"#),
        ]);
        let signatures = sign(&bundle, &secret).unwrap();
        bundle.insert(SIGNATURES_FILE.into(), signatures);
        let v = verifier(vec![secret.clone()]);
        v.verify(&bundle).unwrap();

        // Whitespace and key order in data files do not matter; content does.
        let mut reformatted = bundle.clone();
        reformatted.insert("data.json".into(), b"{\n  \"k\" : 1\n}".to_vec());
        v.verify(&reformatted).unwrap();

        let mut changed = bundle.clone();
        changed.insert("a/p.rego".into(), b"package a\nx := 2\n".to_vec());
        let err = v.verify(&changed).unwrap_err().to_string();
        assert!(err.contains("file digest failed for a/p.rego"), "{err}");

        let mut added = bundle.clone();
        added.insert("b.rego".into(), b"package b\n".to_vec());
        let err = v.verify(&added).unwrap_err().to_string();
        assert!(err.contains("file listed failed for b.rego"), "{err}");

        let mut removed = bundle.clone();
        removed.remove("data.json");
        let err = v.verify(&removed).unwrap_err().to_string();
        assert!(err.contains("file present failed for data.json"), "{err}");

        let mut unsigned = bundle.clone();
        unsigned.remove(SIGNATURES_FILE);
        let err = v.verify(&unsigned).unwrap_err().to_string();
        assert!(err.contains("signature present failed"), "{err}");

        let wrong = verifier(vec![KeyConfig {
            key: Some("other".into()),
            ..secret
        }]);
        let err = wrong.verify(&bundle).unwrap_err().to_string();
        assert!(err.contains("signature failed"), "{err}");
    }

    #[test]
    fn rsa_and_ec_keys_verify_and_a_wrong_key_fails() {
        let mut bundle = files(&[("p.rego", "package p\n")]);
        let signing = KeyConfig {
            id: "rsa".into(),
            algorithm: "RS256".into(),
            key: None,
            key_file: Some(key_file("rsa_private.pem")),
        };
        bundle.insert(SIGNATURES_FILE.into(), sign(&bundle, &signing).unwrap());
        verifier(vec![rsa("rsa", "rsa_public.pem")])
            .verify(&bundle)
            .unwrap();
        let err = verifier(vec![rsa("rsa", "rsa_other_public.pem")])
            .verify(&bundle)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signature failed"), "{err}");
        let err = verifier(vec![rsa("other", "rsa_public.pem")])
            .verify(&bundle)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no verification key \"rsa\""), "{err}");

        let mut ec_bundle = files(&[("p.rego", "package p\n")]);
        let ec_signing = KeyConfig {
            id: "ec".into(),
            algorithm: "ES256".into(),
            key: None,
            key_file: Some(key_file("ec_private.pem")),
        };
        ec_bundle.insert(
            SIGNATURES_FILE.into(),
            sign(&ec_bundle, &ec_signing).unwrap(),
        );
        let ec_public = KeyConfig {
            id: "ec".into(),
            algorithm: "ES256".into(),
            key: None,
            key_file: Some(key_file("ec_public.pem")),
        };
        verifier(vec![ec_public]).verify(&ec_bundle).unwrap();
    }

    #[test]
    fn scope_is_enforced_when_configured() {
        let secret = hs256("ci", "s");
        let mut bundle = files(&[("p.rego", "package p\n")]);
        bundle.insert(SIGNATURES_FILE.into(), sign(&bundle, &secret).unwrap());
        let scoped = verifier_with(vec![secret], None, Some("prod"));
        let err = scoped.verify(&bundle).unwrap_err().to_string();
        assert!(err.contains("scope failed"), "{err}");
    }

    /// An HS256 token over `bundle`'s files with `header` and extra payload
    /// claims, signed with `secret`: what another signer (OPA) may write.
    fn foreign_token(
        bundle: &BTreeMap<String, Vec<u8>>,
        header: jsonwebtoken::Header,
        extra: serde_json::Value,
        secret: &str,
    ) -> Vec<u8> {
        let files: Vec<serde_json::Value> = bundle
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({
                    "name": name,
                    "hash": digest("SHA-256", name, bytes).unwrap(),
                    "algorithm": "SHA-256",
                })
            })
            .collect();
        let mut claims = serde_json::json!({"files": files});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        signatures_file(&header, &claims, secret)
    }

    /// `.signatures.json` holding one HS256 token of `claims`.
    fn signatures_file(
        header: &jsonwebtoken::Header,
        claims: &serde_json::Value,
        secret: &str,
    ) -> Vec<u8> {
        let token = jsonwebtoken::encode(
            header,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        serde_json::to_vec(&serde_json::json!({"signatures": [token]})).unwrap()
    }

    #[test]
    fn digest_algorithms_go_by_opa_names_and_weak_ones_are_refused() {
        let verifier = verifier_with(vec![hs256("ci", "s")], Some("ci"), None);
        let listing = |algorithm: &str, hash: &str| {
            let mut bundle = files(&[("p.rego", "package p\n")]);
            let entry = if algorithm.is_empty() {
                serde_json::json!({"name": "p.rego", "hash": hash})
            } else {
                serde_json::json!({"name": "p.rego", "hash": hash, "algorithm": algorithm})
            };
            let claims = serde_json::json!({"files": [entry]});
            let header = jsonwebtoken::Header::new(Algorithm::HS256);
            bundle.insert(
                SIGNATURES_FILE.into(),
                signatures_file(&header, &claims, "s"),
            );
            verifier.verify(&bundle).map_err(|err| err.to_string())
        };
        for algorithm in [
            "SHA-224",
            "SHA-256",
            "SHA-384",
            "SHA-512",
            "SHA-512-224",
            "SHA-512-256",
        ] {
            let hash = digest(algorithm, "p.rego", b"package p\n").unwrap();
            listing(algorithm, &hash).unwrap();
        }
        let err = listing("MD5", "0cc175b9c0f1b6a831c399e269772661").unwrap_err();
        assert!(err.contains("MD5 is too weak"), "{err}");
        // A token whose entry names no algorithm still verifies; the file
        // it names fails, as in OPA.
        let err = listing("", "00").unwrap_err();
        assert!(
            err.contains("file digest failed for p.rego: the signature gives no digest algorithm"),
            "{err}"
        );
    }

    #[test]
    fn the_configured_keyid_wins_over_the_header_then_the_deprecated_claim() {
        let mut bundle = files(&[("p.rego", "package p\n")]);
        // Signed with foo's secret, but the header names "bar".
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("bar".into());
        bundle.insert(
            SIGNATURES_FILE.into(),
            foreign_token(&bundle, header, serde_json::json!({}), "foo-secret"),
        );
        let with_keyid = |keyid: Option<&str>| {
            let keys = vec![hs256("foo", "foo-secret"), hs256("bar", "bar-secret")];
            verifier_with(keys, keyid, None)
        };
        with_keyid(Some("foo")).verify(&bundle).unwrap();
        let err = with_keyid(None).verify(&bundle).unwrap_err().to_string();
        assert!(err.contains("signature failed"), "{err}");

        // No header kid: the deprecated `keyid` claim picks the key.
        let mut bundle = files(&[("p.rego", "package p\n")]);
        let claim = foreign_token(
            &bundle,
            jsonwebtoken::Header::new(Algorithm::HS256),
            serde_json::json!({"keyid": "bar"}),
            "bar-secret",
        );
        bundle.insert(SIGNATURES_FILE.into(), claim);
        with_keyid(None).verify(&bundle).unwrap();
    }

    #[test]
    fn a_scoped_signature_needs_that_scope_configured_as_in_opa() {
        let mut bundle = files(&[("p.rego", "package p\n")]);
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("ci".into());
        bundle.insert(
            SIGNATURES_FILE.into(),
            foreign_token(&bundle, header, serde_json::json!({"scope": "write"}), "s"),
        );
        let with_scope = |scope: Option<&str>| verifier_with(vec![hs256("ci", "s")], None, scope);
        with_scope(Some("write")).verify(&bundle).unwrap();
        let err = with_scope(None).verify(&bundle).unwrap_err().to_string();
        assert!(
            err.contains("signature scope \"write\" is not the configured \"\""),
            "{err}"
        );
    }
}
