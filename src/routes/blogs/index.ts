import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import { readPostForm, type ParsedForm } from '../../posts/form'
import type { Blog } from '../../repositories/blog-repository'

// Path ids are checked here; a bad one is "no such page" (the error handler turns a params
// validation failure into a 404), never a 500.
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
const ListQuery = Type.Object({ page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }) })

const NO_SUCH_POST = 'There is no such post. It may have been deleted.'
const emptyValues = { title: '', author: '', content: '' }

/** The HTML pages of the blog, and the JSON delete. Each write reads: parse, service, redirect. */
const blogRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { posts, imageStore, imageProcessor, writeLimit } = fastify
  const pageSize = fastify.appConfig.pageSize

  // Ajv coerces 'Infinity' (or '1e400') to Infinity and skips minimum/maximum for non-finite
  // numbers, so the schemas alone would let it reach SQL: no such page, like any bad id.
  fastify.addHook('preHandler', async (request, reply) => {
    const id = (request.params as { id?: unknown }).id
    const page = (request.query as { page?: unknown } | undefined)?.page
    if ((id !== undefined && !Number.isSafeInteger(id)) || (page !== undefined && !Number.isSafeInteger(page))) return reply.notFound()
  })

  const renderForm = (reply: FastifyReply, form: ParsedForm, post: Pick<Blog, 'id' | 'imageLoc'> | null) =>
    reply.code(form.status).render(post ? 'blogs/modify' : 'blogs/new', {
      pageTitle: post ? 'Edit post' : 'New post',
      values: form.values,
      errors: form.errors,
      post
    })

  fastify.get('/', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const page = await posts.list(request.query.page, pageSize)
    return reply.render('blogs/index', { pageTitle: 'Posts', page, flash: reply.takeFlash() })
  })

  fastify.get('/show/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const post = await posts.get(request.params.id)
    if (!post) return reply.notFound(NO_SUCH_POST)
    return reply.render('blogs/show', { pageTitle: post.title, post, flash: reply.takeFlash() })
  })

  fastify.get('/new', async (_request, reply) => {
    return reply.render('blogs/new', { pageTitle: 'New post', values: emptyValues, errors: {}, post: null })
  })

  fastify.post('/new', { config: writeLimit }, async (request, reply) => {
    const form = await readPostForm(request, imageStore, imageProcessor)
    const result = await posts.create(form)
    if (result.status === 'invalid') return renderForm(reply, form, null)
    return reply.flash('created').redirect('/blogs/', 303)
  })

  fastify.get('/modify/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const post = await posts.get(request.params.id)
    if (!post) return reply.notFound(NO_SUCH_POST)
    const values = { title: post.title, author: post.author, content: post.content }
    return reply.render('blogs/modify', { pageTitle: 'Edit post', values, errors: {}, post })
  })

  for (const method of ['POST', 'PUT'] as const) {
    fastify.route({
      method,
      url: '/modify/:id',
      schema: { params: IdParams },
      config: writeLimit,
      handler: async (request, reply) => {
        const id = request.params.id
        const form = await readPostForm(request, imageStore, imageProcessor)
        const result = await posts.update(id, form)
        if (result.status === 'done') return reply.flash('updated').redirect(`/blogs/show/${id}`, 303)
        const post = result.status === 'invalid' ? await posts.get(id) : null
        return post ? renderForm(reply, form, post) : reply.notFound(NO_SUCH_POST)
      }
    })
  }

  fastify.delete('/delete/:id', { schema: { params: IdParams }, config: { json: true, ...writeLimit } }, async (request, reply) => {
    const id = request.params.id
    if ((await posts.delete(id)).status === 'not_found') return reply.notFound(`Post ${id} not found`)
    return { message: `Post ${id} deleted` }
  })

  // The no-JavaScript delete button on the show page.
  fastify.post('/delete/:id', { schema: { params: IdParams }, config: writeLimit }, async (request, reply) => {
    if ((await posts.delete(request.params.id)).status === 'not_found') return reply.notFound(NO_SUCH_POST)
    return reply.flash('deleted').redirect('/blogs/', 303)
  })
}

export default blogRoutes
