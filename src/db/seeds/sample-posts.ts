// The sample posts loaded into an empty database. initial_data.sql inserts the same rows
// (a test checks that the two agree).
export interface SamplePost {
  id: number
  title: string
  author: string
  content: string
  modified_dt: string
}

export const samplePosts: SamplePost[] = [
  {
    id: 1,
    title: 'Why we rewrote our blog in Fastify',
    author: 'Maya Lindqvist',
    content: 'Our old blog ran on a framework that did everything and explained nothing.\nWhen pages got slow we had guesses, not answers.\n\nFastify gave us a small core, schemas on every route and hooks we can time. This post walks through the move and what we measured on the way.',
    modified_dt: '2026-09-01 09:15:00'
  },
  {
    id: 2,
    title: 'Reading a trace: where did 40 ms go?',
    author: 'Tomás Herrera',
    content: 'A trace is a tree of spans. The root is the HTTP request; under it sit the SQL queries, the template render and anything else we chose to measure.\n\nStart from the longest child, not the root. Nine times out of ten the answer is a query that reads more rows than the page shows.',
    modified_dt: '2026-09-04 14:02:00'
  },
  {
    id: 3,
    title: 'Connection pools, explained with a coffee shop',
    author: 'Aiko Tanaka',
    content: 'Picture five baristas and a queue. Each order needs a barista for a few seconds; the queue is the pool\'s pending requests.\n\nAdd baristas and the queue shrinks, until the espresso machine (the database) becomes the limit. Measure the wait for a barista separately from the time spent brewing.',
    modified_dt: '2026-09-08 08:40:00'
  },
  {
    id: 4,
    title: 'Closed vs open load models',
    author: 'Tomás Herrera',
    content: 'A closed-model load test with think time can never send more than VUs / (latency + sleep) requests per second. If the server gets faster, the test simply waits longer between requests.\n\nTo find a server\'s limit, use an open model: fix the arrival rate and watch latency as you raise it.',
    modified_dt: '2026-09-12 17:25:00'
  },
  {
    id: 5,
    title: 'Sync or async database drivers: does it matter?',
    author: 'Priya Raman',
    content: 'We moved a Python blog from sync to async SQLAlchemy and saw no difference in the load test. The test was the problem: it could not have shown one.\n\nThis time we answer the question with per-query spans and a pool-wait span, so the time each request spends waiting for the database is on the screen.',
    modified_dt: '2026-09-15 11:05:00'
  },
  {
    id: 6,
    title: 'Uploading images safely',
    author: 'Jonas Becker',
    content: 'Never trust the file name or the Content-Type a browser sends. Look at the first bytes: PNG, JPEG, GIF and WebP all start with a signature.\n\nGenerate the stored name on the server, stream the upload to disk with a size limit, and make the database row and the file succeed or fail together.',
    modified_dt: '2026-09-19 10:30:00'
  },
  {
    id: 7,
    title: 'Semantic conventions are a contract',
    author: 'Maya Lindqvist',
    content: 'http.route, db.system.name, db.query.text: attribute names that every backend understands.\n\nWhen our spans follow the OpenTelemetry semantic conventions, dashboards written by strangers work on our data without a single edit.',
    modified_dt: '2026-09-23 16:45:00'
  },
  {
    id: 8,
    title: 'Pagination that costs the same on page 1 and with 100,000 posts',
    author: 'Aiko Tanaka',
    content: 'SELECT * with a COUNT(*) on every page view works fine with thirty rows. With a hundred thousand it does not.\n\nRead only the columns the page shows, cut the excerpt in SQL, walk an index in the order of the page, and ask for one extra row to know whether there is a next page.',
    modified_dt: '2026-09-27 09:00:00'
  },
  {
    id: 9,
    title: 'The overhead of tracing is a product decision',
    author: 'Priya Raman',
    content: 'If tracing halves your throughput, somebody will turn it off during the incident where you need it most.\n\nWe measure instrumentation cost per piece (HTTP, SQL, framework hooks) and keep only spans that answer a question.',
    modified_dt: '2026-10-02 13:20:00'
  },
  {
    id: 10,
    title: 'Graceful shutdown in five lines of reasoning',
    author: 'Jonas Becker',
    content: 'Stop accepting new connections. Let in-flight requests finish. Close the database pool. Flush telemetry. Exit with status 0.\n\nAnything else turns every deploy into a small outage that nobody sees in the dashboards.',
    modified_dt: '2026-10-08 18:10:00'
  },
  {
    id: 11,
    title: 'Server-rendered pages still win on a slow phone',
    author: 'Lena Okafor',
    content: 'No bundle, no hydration, no spinner. The HTML arrives and the phone shows it.\n\nA small stylesheet and semantic markup give a clean layout on desktop and mobile without a build step.',
    modified_dt: '2026-10-14 07:55:00'
  },
  {
    id: 12,
    title: 'What X-Process-Time tells you (and what it does not)',
    author: 'Lena Okafor',
    content: 'X-Process-Time is the time the server spent on a request, measured inside the process. It does not include the network, the queue in front of the server, or the time the client spent reading the response.\n\nCompare it with the client-side latency: the gap is where the rest of the time went.',
    modified_dt: '2026-10-20 12:00:00'
  }
]
