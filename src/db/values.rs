//! STUB (replaced by the real module)
use serde_json::Value;
use sqlx::postgres::{PgTypeInfo, Postgres, PgArgumentBuffer};
pub(crate) enum Decoder { Text }
pub(crate) fn decoder_for(_ty: &PgTypeInfo) -> Option<Decoder> { Some(Decoder::Text) }
#[derive(Debug, thiserror::Error)] #[error("x")] pub(crate) struct DecodeError;
pub(crate) fn decode(_d: &Decoder, b: &[u8]) -> Result<Value, DecodeError> { Ok(Value::String(String::from_utf8_lossy(b).into())) }
pub(crate) fn type_name(_ty: &PgTypeInfo) -> String { "x".into() }
pub(crate) struct ParamValue { ty: PgTypeInfo, bytes: Vec<u8> }
pub(crate) fn encode_param(ty: &PgTypeInfo, v: &Value) -> Result<ParamValue, String> { Ok(ParamValue{ ty: ty.clone(), bytes: v.to_string().into_bytes() }) }
impl sqlx::Type<Postgres> for ParamValue { fn type_info() -> PgTypeInfo { PgTypeInfo::with_name("text") } }
impl<'q> sqlx::Encode<'q, Postgres> for ParamValue {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> { buf.extend_from_slice(&self.bytes); Ok(sqlx::encode::IsNull::No) }
    fn produces(&self) -> Option<PgTypeInfo> { Some(self.ty.clone()) }
}
