-- XPUFlow in Flink SQL: prompts from Kafka, completions to Kafka, exactly once.
--
-- Needs the XPUFlow SQL jar (connector/target/xpuflow-flink-sql-<version>.jar after mvn package) and
-- Flink's Kafka SQL connector (flink-sql-connector-kafka-5.0.0-2.2.jar, e.g. in Flink's lib/); the JSON
-- format is in every Flink distribution's lib/. For example
--   sql-client.sh -j xpuflow-flink-sql-0.1.0-SNAPSHOT.jar -f kafka-ml-predict.sql
-- or an ADD JAR statement with the jar's path in the session first, or both jars in lib/.
-- Change the broker address (localhost:9092) and the model directory (/opt/xpuflow/models/stories260k,
-- the small model in this repository's models/) to yours. Input records look like
--   {"id": "p1", "prompt": "Once upon a time"}
-- The connector tests KafkaSqlInferenceTest (Table API) and SqlClientIT (Flink's SQL client with the
-- SQL jar) run this very file against an in-process broker.

-- Kafka transactions commit when a checkpoint completes, so checkpointing must be on.
SET 'execution.checkpointing.interval' = '10s';

-- LLM_GENERATE (registered by class name below) takes its engine and sampling defaults from job
-- parameters. With the same engine settings as the model, both share one engine per TaskManager.
SET 'pipeline.global-job-parameters' = 'xpuflow.model-path:/opt/xpuflow/models/stories260k,xpuflow.threads:2,xpuflow.kv-cache-memory:64mb,xpuflow.max-tokens:32';

CREATE TABLE prompts (
  id     STRING,
  prompt STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'prompts',
  'properties.bootstrap.servers' = 'localhost:9092',
  'properties.group.id' = 'xpuflow-sql-example',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  -- stop at the offsets found at start; remove this line to keep serving new prompts
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json'
);

CREATE TABLE completions (
  id                STRING,
  prompt            STRING,
  completion        STRING,
  finish_reason     STRING,
  prompt_tokens     INT,
  completion_tokens INT
) WITH (
  'connector' = 'kafka',
  'topic' = 'completions',
  'properties.bootstrap.servers' = 'localhost:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'xpuflow-sql-example-completions',
  -- at most the broker's transaction.max.timeout.ms (15 min by default)
  'properties.transaction.timeout.ms' = '600000',
  'format' = 'json'
);

CREATE TABLE stories (
  id          STRING,
  story       STRING,
  short_story STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'stories',
  'properties.bootstrap.servers' = 'localhost:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'xpuflow-sql-example-stories',
  'properties.transaction.timeout.ms' = '600000',
  'format' = 'json'
);

-- A model served by the xpuflow provider: engine options and sampling defaults in WITH.
-- OUTPUT columns are recognised by name; a row that cannot be generated (e.g. a prompt too long for
-- the context) gets a NULL completion and finish_reason 'error: <CODE>' instead of failing the job.
CREATE MODEL storyteller
  INPUT (prompt STRING)
  OUTPUT (completion STRING, finish_reason STRING, prompt_tokens INT, completion_tokens INT)
  WITH (
    'provider' = 'xpuflow',
    'model-path' = '/opt/xpuflow/models/stories260k',
    'threads' = '2',
    'kv-cache-memory' = '64mb',
    'max-tokens' = '32'
  );

CREATE TEMPORARY FUNCTION LLM_GENERATE AS 'io.xpuflow.connector.sql.LlmGenerateFunction';

-- One job, both inserts: ML_PREDICT for the model, LLM_GENERATE with default and per-row sampling.
EXECUTE STATEMENT SET
BEGIN
  INSERT INTO completions
  SELECT id, prompt, completion, finish_reason, prompt_tokens, completion_tokens
  FROM ML_PREDICT(TABLE prompts, MODEL storyteller, DESCRIPTOR(prompt),
                  MAP['async', 'true', 'max-concurrent-operations', '32', 'timeout', '5min']);

  INSERT INTO stories
  SELECT id,
         LLM_GENERATE(prompt),
         LLM_GENERATE(prompt, '{"max_tokens": 8, "temperature": 0.8, "top_p": 0.9}')
  FROM prompts;
END;
