#!/usr/bin/env bash
# Usage: DUR=180 bash bench/soak.sh   (local MariaDB as root; makes and drops its own database)
# Soak: 190 readers + 10 writers for $DUR s on the production build, sampling RSS and open fds.
set -u
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
npm run build >/dev/null
DUR=${DUR:-180}
DB=blog_soak_$$
UP=$(mktemp -d /tmp/soak-uploads.XXXX)
mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB"
DATABASE_URL=mysql://root@127.0.0.1:3306/$DB UPLOAD_DIR=$UP PORT=8140 LOG_LEVEL=warn NODE_ENV=production \
  node --require ./dist/otel/bootstrap.js dist/src/server.js > /tmp/soak-app.log 2>&1 &
APP=$!
for i in $(seq 1 50); do curl -sf localhost:8140/health >/dev/null && break; sleep 0.2; done
node -e "
const fd=new FormData();fd.append('title','Soak post');fd.append('author','soak');fd.append('content','written by the soak run');
fd.append('image_file',new Blob([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000970485973000003e8000003e801b57b526b0000000d494441540899636060606000000005000187a14ed40000000049454e44ae426082','hex')],{type:'image/png'}),'pixel.png');
const r=new Response(fd);r.arrayBuffer().then(b=>{require('fs').writeFileSync('/tmp/soak-body.bin',Buffer.from(b));require('fs').writeFileSync('/tmp/soak-ct.txt',r.headers.get('content-type'))})"
( while kill -0 $APP 2>/dev/null; do echo "$(date +%s) rss_kb=$(awk '/VmRSS/{print $2}' /proc/$APP/status) fds=$(ls /proc/$APP/fd | wc -l)"; sleep 10; done ) > /tmp/soak-samples.txt &
SAMPLER=$!
npx autocannon -c 190 -d $DUR -j http://127.0.0.1:8140/blogs/ > /tmp/soak-read.json 2>/dev/null &
R=$!
node -e "
const ac=require(process.cwd()+'/node_modules/autocannon');const fs=require('fs');
ac({url:'http://127.0.0.1:8140/blogs/new',connections:10,duration:$DUR,method:'POST',headers:{'content-type':fs.readFileSync('/tmp/soak-ct.txt','utf8')},body:fs.readFileSync('/tmp/soak-body.bin')},(e,r)=>fs.writeFileSync('/tmp/soak-write.json',JSON.stringify(r)))" &
W=$!
wait $R $W
sleep 2
kill -TERM $APP; wait $APP; echo "app exit $?"
kill $SAMPLER 2>/dev/null
node -e "
for (const f of ['read','write']) { const r=JSON.parse(require('fs').readFileSync('/tmp/soak-'+f+'.json')); console.log(f, 'requests', r.requests.total, 'req/s', r.requests.average, 'p99 ms', r.latency.p99, 'max', r.latency.max, 'errors', r.errors, 'timeouts', r.timeouts, 'non2xx', r.non2xx, 'statuses', JSON.stringify(r.statusCodeStats||{})) }"
ROWS=$(mysql -uroot -h127.0.0.1 -N $DB -e "select count(*) from blog where image_loc is not null")
FILES=$(ls $UP | wc -l); INC=$(ls $UP/.incoming | wc -l)
MISSING=0; for f in $(mysql -uroot -h127.0.0.1 -N $DB -e "select image_loc from blog where image_loc is not null"); do [ -f "$UP/$f" ] || MISSING=$((MISSING+1)); done
echo "rows with image=$ROWS files=$FILES incoming=$INC rows-missing-file=$MISSING"
cat /tmp/soak-samples.txt
mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB"; rm -rf "$UP"
