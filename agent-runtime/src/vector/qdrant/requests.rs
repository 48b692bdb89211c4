//! The gRPC requests of the Qdrant backend, built as pure functions of the store's settings
//! and the caller's points, filters and searches, and the conversions of the answers back.

use std::collections::HashMap;

use agent_crds::runtime_config::Distance;
use qdrant_client::Payload;
use qdrant_client::qdrant::{
    self, Condition, CountPoints, CreateCollection, CreateFieldIndexCollection, DeletePoints, DenseVector, FieldType,
    Filter, Modifier, NamedVectors, PointStruct, PointsSelector, PrefetchQuery, Query, QueryPoints, ScrollPoints,
    SparseVectorConfig, SparseVectorParams, UpsertPoints, VectorInput, VectorParams, VectorParamsMap, Vectors,
    VectorsConfig, WithPayloadSelector, WithVectorsSelector, r#match::MatchValue, points_selector, vector_input,
    vectors_config, with_payload_selector, with_vectors_selector,
};
use serde_json::{Map, Value};

use crate::vector::{
    Hit, Match, PayloadFilter, Point, RRF_K, SPARSE_RRF_WEIGHT, SearchRequest, SparseVector, VectorError,
};

/// Name of the dense vector: the same as in the embedded store, so both look alike.
pub(super) const DENSE: &str = "dense";
/// Name of the BM25 sparse vector, as in the embedded store.
pub(super) const SPARSE: &str = "bm25";
/// Each leg of a hybrid search fetches this many times the asked-for hits (at least
/// `MIN_PREFETCH`), as the embedded store does, so a point ranked lower in one leg can still win.
const PREFETCH_FACTOR: usize = 4;
const MIN_PREFETCH: usize = 50;

/// The payload fields the runtime filters on, indexed when the collection is prepared: the
/// record kind (`knowledge::KIND`), a chunk's document and position (`knowledge`), a memory's
/// scope, session and creation time (`memory`). Filters work without indexes; with them they
/// stay fast on large collections, and servers in strict mode accept them.
pub(super) const PAYLOAD_INDEXES: &[(&str, FieldType)] = &[
    (crate::knowledge::KIND, FieldType::Keyword),
    ("documentId", FieldType::Keyword),
    ("chunk", FieldType::Integer),
    ("scope", FieldType::Keyword),
    ("session", FieldType::Keyword),
    ("createdUnix", FieldType::Integer),
];

/// The request creating `collection`: a named dense vector of the configured size and
/// distance, and a named sparse vector whose IDF the server computes (BM25, as in the
/// embedded store).
pub(super) fn create_collection(collection: &str, dimension: usize, distance: Distance) -> CreateCollection {
    let dense =
        VectorParams { size: dimension as u64, distance: grpc_distance(distance).into(), ..VectorParams::default() };
    let sparse = SparseVectorParams { modifier: Some(Modifier::Idf.into()), ..SparseVectorParams::default() };
    CreateCollection {
        collection_name: collection.to_owned(),
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([(DENSE.to_owned(), dense)]),
            })),
        }),
        sparse_vectors_config: Some(SparseVectorConfig { map: HashMap::from([(SPARSE.to_owned(), sparse)]) }),
        ..CreateCollection::default()
    }
}

/// The requests creating the payload indexes `existing` lacks, each waiting until it is built.
pub(super) fn missing_indexes<'a>(
    collection: &'a str,
    existing: &'a HashMap<String, qdrant::PayloadSchemaInfo>,
) -> impl Iterator<Item = CreateFieldIndexCollection> + 'a {
    PAYLOAD_INDEXES.iter().filter(|(field, _)| !existing.contains_key(*field)).map(|&(field, field_type)| {
        CreateFieldIndexCollection {
            collection_name: collection.to_owned(),
            wait: Some(true),
            field_name: field.to_owned(),
            field_type: Some(field_type.into()),
            ..CreateFieldIndexCollection::default()
        }
    })
}

fn grpc_distance(distance: Distance) -> qdrant::Distance {
    match distance {
        Distance::Cosine => qdrant::Distance::Cosine,
        Distance::Dot => qdrant::Distance::Dot,
    }
}

/// The vector settings a collection keeps for life, in words ("384-dimensional Cosine + BM25").
pub(super) fn describe(params: Option<&qdrant::CollectionParams>) -> String {
    let dense = match params.and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.as_ref()) {
        Some(vectors_config::Config::ParamsMap(map)) => map.map.get(DENSE).map_or_else(
            || "no \"dense\"".to_owned(),
            |v| format!("{}-dimensional {}", v.size, distance_name(v.distance)),
        ),
        Some(vectors_config::Config::Params(v)) => {
            format!("unnamed {}-dimensional {}", v.size, distance_name(v.distance))
        }
        None => "no dense".to_owned(),
    };
    let sparse = params.and_then(|p| p.sparse_vectors_config.as_ref()).and_then(|s| s.map.get(SPARSE));
    let sparse = match sparse.map(|s| s.modifier) {
        Some(Some(modifier)) if modifier == i32::from(Modifier::Idf) => "BM25",
        Some(_) => "BM25 without IDF",
        None => "no BM25",
    };
    format!("{dense} + {sparse}")
}

/// How the settings of a collection created by [`create_collection`] are described.
pub(super) fn describe_configured(dimension: usize, distance: Distance) -> String {
    let request = create_collection("", dimension, distance);
    describe(Some(&qdrant::CollectionParams {
        vectors_config: request.vectors_config,
        sparse_vectors_config: request.sparse_vectors_config,
        ..qdrant::CollectionParams::default()
    }))
}

fn distance_name(distance: i32) -> String {
    qdrant::Distance::try_from(distance)
        .map_or_else(|_| format!("distance #{distance}"), |d| d.as_str_name().to_owned())
}

/// The request writing `points`, after checking every one; it returns once the server has
/// applied the write (`wait`).
pub(super) fn upsert_points(
    collection: &str,
    points: Vec<Point>,
    dimension: usize,
) -> Result<UpsertPoints, VectorError> {
    let points = points.into_iter().map(|point| point_struct(point, dimension)).collect::<Result<Vec<_>, _>>()?;
    Ok(UpsertPoints { collection_name: collection.to_owned(), wait: Some(true), points, ..UpsertPoints::default() })
}

fn point_struct(point: Point, dimension: usize) -> Result<PointStruct, VectorError> {
    let Point { id, dense, sparse, payload } = point;
    if dense.len() != dimension {
        return Err(VectorError::WrongDimension { id: Some(id), expected: dimension, got: dense.len() });
    }
    let mut vectors = NamedVectors::default().add_vector(DENSE, qdrant::Vector::new_dense(dense));
    if let Some(sparse) = sparse {
        check_sparse(&sparse).map_err(|why| VectorError::InvalidSparse(format!("point {id}: {why}")))?;
        vectors = vectors.add_vector(SPARSE, qdrant::Vector::new_sparse(sparse.indices, sparse.values));
    }
    Ok(PointStruct {
        id: Some(id.into()),
        payload: Payload::from(payload).into(),
        vectors: Some(Vectors::from(vectors)),
    })
}

/// The server would refuse these too, but only after the points before them were sent.
fn check_sparse(vector: &SparseVector) -> Result<(), String> {
    if vector.indices.len() != vector.values.len() {
        return Err(format!("{} indices but {} values", vector.indices.len(), vector.values.len()));
    }
    let mut indices = vector.indices.clone();
    indices.sort_unstable();
    match indices.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(format!("index {} appears more than once", pair[0])),
        None => Ok(()),
    }
}

/// The request deleting the points matching `filter`, waiting until it is applied.
pub(super) fn delete_points(collection: &str, filter: &PayloadFilter) -> Result<DeletePoints, VectorError> {
    if filter.must.is_empty() {
        return Err(VectorError::EmptyFilter);
    }
    Ok(DeletePoints {
        collection_name: collection.to_owned(),
        wait: Some(true),
        points: Some(PointsSelector {
            points_selector_one_of: Some(points_selector::PointsSelectorOneOf::Filter(grpc_filter(filter)?)),
        }),
        ..DeletePoints::default()
    })
}

/// The query for a search: one nearest-neighbour query, or a dense and a sparse prefetch fused
/// by reciprocal rank (the server's RRF, whose constant k = 2 the embedded store uses too).
pub(super) fn query_points(
    collection: &str,
    request: SearchRequest,
    dimension: usize,
) -> Result<QueryPoints, VectorError> {
    let SearchRequest { dense, sparse, limit, filter, score_threshold } = request;
    if let Some(dense) = &dense
        && dense.len() != dimension
    {
        return Err(VectorError::WrongDimension { id: None, expected: dimension, got: dense.len() });
    }
    if let Some(sparse) = &sparse {
        check_sparse(sparse).map_err(|why| VectorError::InvalidSparse(format!("query: {why}")))?;
    }
    let filter = filter.as_ref().map(grpc_filter).transpose()?;
    let dense = dense.map(|data| nearest(vector_input::Variant::Dense(DenseVector { data }), DENSE));
    let sparse = sparse.map(|SparseVector { indices, values }| {
        nearest(vector_input::Variant::Sparse(qdrant::SparseVector { values, indices }), SPARSE)
    });
    let mut query = QueryPoints {
        collection_name: collection.to_owned(),
        filter: filter.clone(),
        limit: Some(limit as u64),
        with_payload: Some(WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Enable(true)),
        }),
        with_vectors: Some(WithVectorsSelector {
            selector_options: Some(with_vectors_selector::SelectorOptions::Enable(false)),
        }),
        ..QueryPoints::default()
    };
    match (dense, sparse) {
        (None, None) => return Err(VectorError::EmptyRequest),
        (Some((nearest, using)), None) | (None, Some((nearest, using))) => {
            query.query = Some(nearest);
            query.using = Some(using.to_owned());
            query.score_threshold = score_threshold;
        }
        (Some(dense), Some(sparse)) => {
            let leg_limit = limit.saturating_mul(PREFETCH_FACTOR).max(MIN_PREFETCH) as u64;
            // Fused scores are rank-based, so the threshold prunes the dense candidates instead.
            let leg = |(nearest, using): (Query, &str), score_threshold| PrefetchQuery {
                query: Some(nearest),
                using: Some(using.to_owned()),
                // The server passes the top-level filter down too; set here, no version can miss it.
                filter: filter.clone(),
                score_threshold,
                limit: Some(leg_limit),
                ..PrefetchQuery::default()
            };
            query.prefetch = vec![leg(dense, score_threshold), leg(sparse, None)];
            let rrf = qdrant::Rrf { k: Some(RRF_K), weights: vec![1.0, SPARSE_RRF_WEIGHT] };
            query.query = Some(Query { variant: Some(qdrant::query::Variant::Rrf(rrf)) });
        }
    }
    Ok(query)
}

fn nearest(variant: vector_input::Variant, using: &'static str) -> (Query, &'static str) {
    (Query::new_nearest(VectorInput { variant: Some(variant) }), using)
}

/// The exact count of the points matching `filter`.
pub(super) fn count_points(collection: &str, filter: Option<&PayloadFilter>) -> Result<CountPoints, VectorError> {
    Ok(CountPoints {
        collection_name: collection.to_owned(),
        filter: filter.map(grpc_filter).transpose()?,
        exact: Some(true),
        ..CountPoints::default()
    })
}

/// One page of up to `limit` payloads of points matching `filter`.
pub(super) fn scroll_points(
    collection: &str,
    filter: Option<&PayloadFilter>,
    limit: usize,
) -> Result<ScrollPoints, VectorError> {
    Ok(ScrollPoints {
        collection_name: collection.to_owned(),
        filter: filter.map(grpc_filter).transpose()?,
        limit: Some(u32::try_from(limit).unwrap_or(u32::MAX)),
        with_payload: Some(WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Enable(true)),
        }),
        with_vectors: Some(WithVectorsSelector {
            selector_options: Some(with_vectors_selector::SelectorOptions::Enable(false)),
        }),
        ..ScrollPoints::default()
    })
}

/// The server filter for a payload filter: every condition must hold. Keys are checked with the
/// embedded store's parser, which is Qdrant's own, so both backends accept the same keys.
pub(super) fn grpc_filter(filter: &PayloadFilter) -> Result<Filter, VectorError> {
    let must = filter
        .must
        .iter()
        .map(|(key, condition)| {
            if key.parse::<qdrant_edge::JsonPath>().is_err() {
                return Err(VectorError::InvalidKey(key.clone()));
            }
            Ok(match condition {
                // Spelled out: the client's `From<String>` turns a value with a space into a
                // full-text match.
                Match::Keyword(value) => Condition::matches(key.clone(), MatchValue::Keyword(value.clone())),
                Match::Integer(value) => Condition::matches(key.clone(), MatchValue::Integer(*value)),
                Match::Range { gte, lte } => {
                    Condition::range(key.clone(), qdrant::Range { gte: *gte, lte: *lte, ..qdrant::Range::default() })
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter::must(must))
}

/// Reads the stored dense vectors of `ids` (no payloads).
pub(super) fn get_dense_vectors(collection: &str, ids: &[u64]) -> qdrant::GetPoints {
    qdrant::GetPoints {
        collection_name: collection.to_owned(),
        ids: ids.iter().map(|&id| qdrant::PointId::from(id)).collect(),
        with_payload: Some(WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Enable(false)),
        }),
        with_vectors: Some(WithVectorsSelector {
            selector_options: Some(with_vectors_selector::SelectorOptions::Include(qdrant::VectorsSelector {
                names: vec![DENSE.to_owned()],
            })),
        }),
        ..qdrant::GetPoints::default()
    }
}

/// The id and dense vector of a retrieved point, when it has both.
pub(super) fn dense_of(point: qdrant::RetrievedPoint) -> Option<(u64, Vec<f32>)> {
    let id = match point.id?.point_id_options? {
        qdrant::point_id::PointIdOptions::Num(id) => id,
        qdrant::point_id::PointIdOptions::Uuid(_) => return None,
    };
    let output = match point.vectors?.vectors_options? {
        qdrant::vectors_output::VectorsOptions::Vectors(mut named) => named.vectors.remove(DENSE)?,
        qdrant::vectors_output::VectorsOptions::Vector(single) => single,
    };
    match output.into_vector() {
        qdrant::vector_output::Vector::Dense(dense) => Some((id, dense.data)),
        _ => None,
    }
}

/// A hit from a scored or retrieved point; ids this store did not write are refused.
pub(super) fn hit(
    id: Option<qdrant::PointId>,
    score: f32,
    payload: HashMap<String, qdrant::Value>,
) -> Result<Hit, VectorError> {
    let id = match id.and_then(|id| id.point_id_options) {
        Some(qdrant::point_id::PointIdOptions::Num(id)) => id,
        Some(qdrant::point_id::PointIdOptions::Uuid(uuid)) => return Err(VectorError::ForeignId(uuid)),
        None => return Err(VectorError::ForeignId("(none)".to_owned())),
    };
    Ok(Hit { id, score, payload: Map::<String, Value>::from(Payload::from(payload)) })
}

#[cfg(test)]
mod tests;
