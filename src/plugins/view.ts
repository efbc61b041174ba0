import path from 'node:path'
import view from '@fastify/view'
import ejs from 'ejs'
import fp from 'fastify-plugin'
import { ROOT } from '../paths'
import { FORM_RULES } from '../posts/fields'
import { ATTR, SPAN } from '../telemetry/names'
import { CSRF_FIELD } from '../validation/forms'
import { signInPath } from '../accounts/next'
import { withSpan } from '../telemetry/tracer'
import { postImage, templateLocals, viewHelpers, type PostImageFacts } from '../views'

declare module 'fastify' {
  interface FastifyReply {
    /** Renders a view (timed for Server-Timing, traced as `view.render`); return its result. */
    render(view: string, data: Record<string, unknown>): Promise<string>
  }
}

export interface ViewPluginOptions {
  /** Cache compiled templates (production); off while editing views. */
  cache: boolean
  maxUploadBytes: number
}

const VIEWS = path.join(ROOT, 'views')

/**
 * The ejs options of every view (bench/floor renders with the same). Includes are written from
 * `root` (`include('/partials/flash')`): ejs looks a relative include up with a stat on every
 * render, cache or not, and a root-relative one without.
 */
export function ejsOptions(cache: boolean): Record<string, unknown> {
  return { cache, root: VIEWS, _with: false, destructuredLocals: templateLocals(VIEWS) }
}

/** EJS views with the helpers and facts every template may use. */
export default fp<ViewPluginOptions>(
  async (fastify, opts) => {
    await fastify.register(view, {
      engine: { ejs },
      root: VIEWS,
      layout: 'layout.ejs',
      viewExt: 'ejs',
      production: opts.cache,
      // ejs compiles an include (the flash partial) on every render unless its own cache is on:
      // that was ~10% of the list page's CPU (../shared/PERF-NOTES.md). Locals as variables,
      // not a `with` block: see templateLocals.
      options: ejsOptions(opts.cache),
      defaultContext: {
        ...viewHelpers,
        fields: FORM_RULES,
        csrfField: CSRF_FIELD,
        maxUploadMiB: +(opts.maxUploadBytes / 1048576).toFixed(1),
        // Looked up when a page renders: the store is registered after the views.
        imageUrl: (name: string): string => fastify.imageStore.url(name),
        postImage: (post: PostImageFacts) => postImage(post, (name) => fastify.imageStore.url(name))
      }
    })

    fastify.decorateReply('render', async function (name: string, data: Record<string, unknown>) {
      // Every page's header shows who is signed in (or a sign-in link that comes back to this
      // page); its forms carry the session's CSRF token.
      const request = this.request
      const page = {
        viewer: request.viewer ?? null,
        csrfToken: request.session?.csrfToken ?? '',
        // The path only: a query may carry a token (the inspector's `?token=`), and error pages are not worth returning to.
        signInHref: signInPath(request.method === 'GET' && this.statusCode < 400 ? request.url.split('?')[0] : undefined),
        ...data
      }
      const timings = this.request.timings
      return withSpan(SPAN.viewRender, { [ATTR.viewName]: name }, async () => (await this.viewAsync(name, page)) as string, (ms) => {
        if (timings) timings.renderMs += ms
      })
    })
  },
  { name: 'view' }
)
