// After `npm ci`/`npm install`: one line saying which Node runs the app. npm puts
// node_modules/.bin first on a script's PATH, so this runs on the `node` devDependency's Node,
// the one `npm start` and `npm test` use; npm's user agent names the Node npm itself ran on.
const app = process.version
const npmNode = /\bnode\/(v[\d.]+)/.exec(process.env.npm_config_user_agent ?? '')?.[1]
const major = (v) => Number(v.slice(1).split('.')[0])
let line = `blog_app: Node ${app} runs the app through npm scripts (npm start, npm test)`
if (major(app) < 24) line += `; it needs Node 24 or later (package.json engines)`
else if (npmNode && major(npmNode) !== major(app)) {
  line += `; the node on your PATH is ${npmNode}, so run other commands with node_modules/.bin first on PATH`
}
console.log(`${line}.`)
