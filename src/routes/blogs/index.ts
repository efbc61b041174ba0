import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { signInPath } from '../../accounts/next'
import { forbidden, signInRequired } from '../../accounts/plugin'
import { readPostForm, type FormPage } from '../../posts/form'
import { mayChange, type Writer } from '../../posts/service'
import { requestWorkLimit } from '../../lib/work-limit'
import type { Blog } from '../../repositories/blog-repository'
import { CSRF_FIELD } from '../../validation/forms'

// Path ids are checked here; a bad one is "no such page" (the error handler turns a params
// validation failure into a 404), never a 500.
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
const ListQuery = Type.Object({ page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }) })
const CsrfBody = Type.Object({ [CSRF_FIELD]: Type.String({ maxLength: 100, default: '' }) })

const NO_SUCH_POST = 'There is no such post. It may have been deleted.'
const emptyValues = { title: '', content: '', image_alt: '' }

/**
 * The HTML pages of the blog, and the JSON delete. Anyone may read; writing needs a signed-in
 * user, and changing a post its author or an admin. Each write reads: who, parse, service,
 * answer (the posts service checks the CSRF token, the fields and the image, in that order).
 */
const blogRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { posts, writeLimit } = fastify
  const { pageSize, requestTimeoutMs } = fastify.appConfig

  // Ajv coerces 'Infinity' (or '1e400') to Infinity and skips minimum/maximum for non-finite
  // numbers, so the schemas alone would let it reach SQL: no such page, like any bad id.
  fastify.addHook('preHandler', async (request, reply) => {
    const id = (request.params as { id?: unknown }).id
    const page = (request.query as { page?: unknown } | undefined)?.page
    if ((id !== undefined && !Number.isSafeInteger(id)) || (page !== undefined && !Number.isSafeInteger(page))) return reply.notFound()
  })
  fastify.addHook('preHandler', fastify.loadViewer)

  /** The signed-in user, or a 401 before any of the body is read. */
  const signedIn = (request: FastifyRequest, json = false) => {
    if (!request.viewer) throw signInRequired(json)
    return request.viewer
  }

  /** The signed-in writer, for the posts service (which checks their form's CSRF token and keeps to the request's deadline). */
  const writer = (request: FastifyRequest, reply: FastifyReply): Writer => ({
    viewer: signedIn(request),
    checkCsrf: (given) => request.checkCsrf(given),
    limit: requestWorkLimit(reply, requestTimeoutMs)
  })

  const renderForm = (reply: FastifyReply, form: FormPage, post: Pick<Blog, 'id' | 'imageLoc'> | null) => {
    // Shown before the whole body was read (a file over the limit): the rest is not worth reading.
    if (!reply.request.raw.complete) reply.header('Connection', 'close')
    return reply.code(form.status).render(post ? 'blogs/modify' : 'blogs/new', {
      pageTitle: post ? 'Edit post' : 'New post',
      values: form.values,
      errors: form.errors,
      post
    })
  }

  fastify.get('/', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const page = await posts.list(request.query.page, pageSize)
    return reply.render('blogs/index', { pageTitle: 'Posts', page, flash: reply.takeFlash() })
  })

  fastify.get('/show/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const post = await posts.get(request.params.id)
    if (!post) return reply.notFound(NO_SUCH_POST)
    const canModify = mayChange(request.viewer, post)
    return reply.render('blogs/show', { pageTitle: post.title, post, canModify, flash: reply.takeFlash() })
  })

  fastify.get('/new', async (request, reply) => {
    if (!request.viewer) return reply.redirect(signInPath(request.url), 303)
    return reply.render('blogs/new', { pageTitle: 'New post', values: emptyValues, errors: {}, post: null })
  })

  fastify.post('/new', { ...writeLimit, config: { uploadForm: true } }, async (request, reply) => {
    const who = writer(request, reply)
    const form = await readPostForm(request)
    const result = await posts.create(who, form)
    if (result.status === 'invalid') return renderForm(reply, result.form, null)
    return reply.flash('created').redirect('/blogs/', 303)
  })

  fastify.get('/modify/:id', { schema: { params: IdParams } }, async (request, reply) => {
    if (!request.viewer) return reply.redirect(signInPath(request.url), 303)
    const post = await posts.get(request.params.id)
    if (!post) return reply.notFound(NO_SUCH_POST)
    if (!mayChange(request.viewer, post)) throw forbidden()
    const values = { title: post.title, content: post.content, image_alt: post.imageAlt ?? '' }
    return reply.render('blogs/modify', { pageTitle: 'Edit post', values, errors: {}, post })
  })

  for (const method of ['POST', 'PUT'] as const) {
    fastify.route({
      method,
      url: '/modify/:id',
      schema: { params: IdParams },
      ...writeLimit,
      config: { uploadForm: true },
      handler: async (request, reply) => {
        const id = request.params.id
        const who = writer(request, reply)
        const form = await readPostForm(request)
        const result = await posts.update(who, id, form)
        if (result.status === 'done') return reply.flash('updated').redirect(`/blogs/show/${id}`, 303)
        if (result.status === 'forbidden') throw forbidden()
        if (result.status === 'not_found') return reply.notFound(NO_SUCH_POST)
        return renderForm(reply, result.form, result.post)
      }
    })
  }

  // For scripts: the session cookie or an API token. No CSRF token: a cross-site page cannot
  // send a DELETE with the cookie (SameSite=Lax, no CORS, and the request guard's Origin check).
  fastify.delete('/delete/:id', { schema: { params: IdParams }, config: { json: true, apiToken: true }, ...writeLimit }, async (request, reply) => {
    const id = request.params.id
    const { status } = await posts.delete(id, signedIn(request, true))
    if (status === 'not_found') return reply.notFound(`Post ${id} not found`)
    if (status === 'forbidden') throw forbidden()
    return { message: `Post ${id} deleted` }
  })

  // Delete asks first: the show page links here, this page's button posts below.
  fastify.get('/delete/:id', { schema: { params: IdParams } }, async (request, reply) => {
    if (!request.viewer) return reply.redirect(signInPath(request.url), 303)
    const post = await posts.get(request.params.id)
    if (!post) return reply.notFound(NO_SUCH_POST)
    if (!mayChange(request.viewer, post)) throw forbidden()
    return reply.render('blogs/delete', { pageTitle: 'Delete post', post })
  })

  // The no-JavaScript delete button of the confirmation page.
  fastify.post('/delete/:id', { schema: { params: IdParams, body: CsrfBody }, ...writeLimit }, async (request, reply) => {
    const viewer = signedIn(request)
    request.checkCsrf(request.body[CSRF_FIELD])
    const { status } = await posts.delete(request.params.id, viewer)
    if (status === 'not_found') return reply.notFound(NO_SUCH_POST)
    if (status === 'forbidden') throw forbidden()
    return reply.flash('deleted').redirect('/blogs/', 303)
  })
}

export default blogRoutes
