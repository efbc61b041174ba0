-- blog_app sample database: the schema of migrations 001-create-blog and 002-blog-thumb and a
-- dozen sample posts.
-- Run with:  mysql -uroot -p < initial_data.sql   (safe to run again: nothing is duplicated)
-- The app creates the same schema and posts by itself on first start (npm start); a test
-- checks that this file and the migrations give the same table.

SET NAMES utf8mb4;

CREATE DATABASE IF NOT EXISTS `blog_db` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE `blog_db`;

CREATE TABLE IF NOT EXISTS `blog` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `title` VARCHAR(200) NOT NULL,
  `author` VARCHAR(100) NOT NULL,
  `content` TEXT NOT NULL,
  `image_loc` VARCHAR(255) NULL DEFAULT NULL,
  `thumb_loc` VARCHAR(255) NULL DEFAULT NULL,
  `modified_dt` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `idx_blog_modified_dt_id` (`modified_dt`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Explicit ids make a second run a no-op (INSERT IGNORE skips rows that exist).
INSERT IGNORE INTO `blog` (`id`, `title`, `author`, `content`, `image_loc`, `modified_dt`) VALUES
  (1, 'Why we rewrote our blog in Fastify', 'Maya Lindqvist',
   'Our old blog ran on a framework that did everything and explained nothing.\nWhen pages got slow we had guesses, not answers.\n\nFastify gave us a small core, schemas on every route and hooks we can time. This post walks through the move and what we measured on the way.',
   NULL, '2026-09-01 09:15:00'),
  (2, 'Reading a trace: where did 40 ms go?', 'Tomás Herrera',
   'A trace is a tree of spans. The root is the HTTP request; under it sit the SQL queries, the template render and anything else we chose to measure.\n\nStart from the longest child, not the root. Nine times out of ten the answer is a query that reads more rows than the page shows.',
   NULL, '2026-09-04 14:02:00'),
  (3, 'Connection pools, explained with a coffee shop', 'Aiko Tanaka',
   'Picture five baristas and a queue. Each order needs a barista for a few seconds; the queue is the pool''s pending requests.\n\nAdd baristas and the queue shrinks, until the espresso machine (the database) becomes the limit. Measure the wait for a barista separately from the time spent brewing.',
   NULL, '2026-09-08 08:40:00'),
  (4, 'Closed vs open load models', 'Tomás Herrera',
   'A closed-model load test with think time can never send more than VUs / (latency + sleep) requests per second. If the server gets faster, the test simply waits longer between requests.\n\nTo find a server''s limit, use an open model: fix the arrival rate and watch latency as you raise it.',
   NULL, '2026-09-12 17:25:00'),
  (5, 'Sync or async database drivers: does it matter?', 'Priya Raman',
   'We moved a Python blog from sync to async SQLAlchemy and saw no difference in the load test. The test was the problem: it could not have shown one.\n\nThis time we answer the question with per-query spans and a pool-wait span, so the time each request spends waiting for the database is on the screen.',
   NULL, '2026-09-15 11:05:00'),
  (6, 'Uploading images safely', 'Jonas Becker',
   'Never trust the file name or the Content-Type a browser sends. Look at the first bytes: PNG, JPEG, GIF and WebP all start with a signature.\n\nGenerate the stored name on the server, stream the upload to disk with a size limit, and make the database row and the file succeed or fail together.',
   NULL, '2026-09-19 10:30:00'),
  (7, 'Semantic conventions are a contract', 'Maya Lindqvist',
   'http.route, db.system.name, db.query.text: attribute names that every backend understands.\n\nWhen our spans follow the OpenTelemetry semantic conventions, dashboards written by strangers work on our data without a single edit.',
   NULL, '2026-09-23 16:45:00'),
  (8, 'Pagination that costs the same on page 1 and with 100,000 posts', 'Aiko Tanaka',
   'SELECT * with a COUNT(*) on every page view works fine with thirty rows. With a hundred thousand it does not.\n\nRead only the columns the page shows, cut the excerpt in SQL, walk an index in the order of the page, and ask for one extra row to know whether there is a next page.',
   NULL, '2026-09-27 09:00:00'),
  (9, 'The overhead of tracing is a product decision', 'Priya Raman',
   'If tracing halves your throughput, somebody will turn it off during the incident where you need it most.\n\nWe measure instrumentation cost per piece (HTTP, SQL, framework hooks) and keep only spans that answer a question.',
   NULL, '2026-10-02 13:20:00'),
  (10, 'Graceful shutdown in five lines of reasoning', 'Jonas Becker',
   'Stop accepting new connections. Let in-flight requests finish. Close the database pool. Flush telemetry. Exit with status 0.\n\nAnything else turns every deploy into a small outage that nobody sees in the dashboards.',
   NULL, '2026-10-08 18:10:00'),
  (11, 'Server-rendered pages still win on a slow phone', 'Lena Okafor',
   'No bundle, no hydration, no spinner. The HTML arrives and the phone shows it.\n\nA small stylesheet and semantic markup give a clean layout on desktop and mobile without a build step.',
   NULL, '2026-10-14 07:55:00'),
  (12, 'What X-Process-Time tells you (and what it does not)', 'Lena Okafor',
   'X-Process-Time is the time the server spent on a request, measured inside the process. It does not include the network, the queue in front of the server, or the time the client spent reading the response.\n\nCompare it with the client-side latency: the gap is where the rest of the time went.',
   NULL, '2026-10-20 12:00:00');
