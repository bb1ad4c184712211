#ifndef TN_PROTO_H
#define TN_PROTO_H
/*
 * tn_proto - names of the stream contracts, mirroring proto/README.md and
 * proto/streams/<type>.v<v>.json. Change both together: a field, stream or
 * type named here and not in proto/ (or the reverse) is a bug.
 *
 * An entry is flat field/value pairs (redis-cli XRANGE readable):
 *   type, v, tenant, trace, <ids of the type>, dedupe, data
 * where data is the JSON text of the payload that the type's schema
 * describes. No secret ever goes into a stream.
 */

/* Streams. Every stream S has a dead-letter stream S ":dead". */
#define TN_STREAM_IN "tern:in"           /* inbound.message; producer ingest */
#define TN_STREAM_OUT "tern:out"         /* outbound.message, outbound.read; producer agent, ... */
#define TN_STREAM_STATUS "tern:status"   /* delivery.status; producer ingest */
#define TN_STREAM_CAL "tern:cal"         /* cal.request; producer agent, ingest, ctl */
#define TN_STREAM_PRIVACY "tern:privacy" /* privacy.request; producer ctl, agent */
#define TN_STREAM_DEAD_SUFFIX ":dead"
#define TN_STREAM_IN_DEAD "tern:in:dead"
#define TN_STREAM_OUT_DEAD "tern:out:dead"
#define TN_STREAM_STATUS_DEAD "tern:status:dead"
#define TN_STREAM_CAL_DEAD "tern:cal:dead"
#define TN_STREAM_PRIVACY_DEAD "tern:privacy:dead"

/* Consumer groups. */
#define TN_GROUP_AGENT "agent"     /* on tern:in */
#define TN_GROUP_SENDER "sender"   /* on tern:out and tern:status */
#define TN_GROUP_CALSYNC "calsync" /* on tern:cal */
#define TN_GROUP_SWEEPER "sweeper" /* on tern:privacy */

/* Envelope fields (every entry). */
#define TN_F_TYPE "type"     /* "inbound.message", ... */
#define TN_F_V "v"           /* schema version, decimal ("1") */
#define TN_F_TENANT "tenant" /* tenant uuid */
#define TN_F_TRACE "trace"   /* W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>" */
#define TN_F_DEDUPE "dedupe" /* idempotency key; see TN_DEDUPE_PREFIX */
#define TN_F_DATA "data"     /* JSON text validated by proto/streams/<type>.v<v>.json */

/* Id fields (per type; see proto/README.md for which type carries which). */
#define TN_F_CHANNEL "channel"   /* channel id */
#define TN_F_PROVIDER "provider" /* whatsapp | twilio | telegram */
#define TN_F_PMID "pmid"         /* provider message id */
#define TN_F_STATUS "status"     /* delivery.status: normalised status */
#define TN_F_OUTBOUND "outbound" /* Tern outbound message id */
#define TN_F_ACCOUNT "account"   /* cal.request: calendar account id */
#define TN_F_REQUEST "request"   /* cal.request / privacy.request: request id */

/* Dead-letter fields, added to the original fields on <stream>:dead. */
#define TN_F_DEAD_REASON "dead_reason"         /* short stable reason */
#define TN_F_DEAD_FROM_ID "dead_from_id"       /* entry id on the source stream */
#define TN_F_DEAD_DELIVERIES "dead_deliveries" /* delivery count when it died */
#define TN_F_DEAD_AT "dead_at"                 /* RFC 3339 UTC */

/* Message types and their current versions. */
#define TN_TYPE_INBOUND_MESSAGE "inbound.message"
#define TN_TYPE_DELIVERY_STATUS "delivery.status"
#define TN_TYPE_OUTBOUND_MESSAGE "outbound.message"
#define TN_TYPE_OUTBOUND_READ "outbound.read" /* mark an inbound message read (tern:out) */
#define TN_TYPE_CAL_REQUEST "cal.request"
#define TN_TYPE_PRIVACY_REQUEST "privacy.request"
#define TN_V_INBOUND_MESSAGE "1"
#define TN_V_DELIVERY_STATUS "1"
#define TN_V_OUTBOUND_MESSAGE "1"
#define TN_V_OUTBOUND_READ "1"
#define TN_V_CAL_REQUEST "1"
#define TN_V_PRIVACY_REQUEST "1"

/* Providers (the "provider" field and data.provider). */
#define TN_PROVIDER_WHATSAPP "whatsapp"
#define TN_PROVIDER_TWILIO "twilio"
#define TN_PROVIDER_TELEGRAM "telegram"

/* Deduplication: SET TN_DEDUPE_PREFIX<dedupe> 1 NX EX <window> before XADD. */
#define TN_DEDUPE_PREFIX "tern:dedupe:"
#define TN_DEDUPE_WINDOW_S (7 * 24 * 3600) /* default: WhatsApp redelivers up to 7 days */

#endif
